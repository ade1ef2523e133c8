"""The pipeline's six stage entry points, one per DVC stage: `python -m stages.<name>`.

Each is a thin `main(argv)` over the library `mnist_dvc`; no stage imports another, and nothing imports
a stage but the tests.

Every stage process starts here: `python -m stages.<name>` imports this package while it locates the stage
module, before the stage module's own imports (Keras among them), and Python documents that `sys.argv[0]` is
"-m" while it does. So a stage process is set up here (TensorFlow's start-up variables, stderr without the
known native noise), and a test that imports a stage for its functions gets nothing set up.
"""

import sys

from mnist_dvc.process_setup import start_stage_process

if sys.argv[0] == "-m":
    start_stage_process()
