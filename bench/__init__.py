"""Benchmarks: scripts that print numbers (never timed tests)."""

import sys

from mnist_dvc.process_setup import start_stage_process

# Every benchmark process starts here (`python -m bench.<name>`, while sys.argv[0] is "-m"; see
# stages/__init__.py), before its modules import TensorFlow: the same start-up as the stages, so that it
# measures what the pipeline runs. A test importing a benchmark's functions gets nothing set up.
if sys.argv[0] == "-m":
    start_stage_process()
