"""Benchmarks: scripts that print numbers (never timed tests)."""

from mnist_dvc.process_setup import prepare_tensorflow_environment

# Every benchmark process starts here (`python -m bench.<name>`), before its modules import TensorFlow: the
# same start-up settings as the stages, so that it measures what the pipeline runs.
prepare_tensorflow_environment()
