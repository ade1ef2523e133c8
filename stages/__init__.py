"""The pipeline's six stage entry points, one per DVC stage: `python -m stages.<name>`.

Each is a thin `main(argv)` over the library `mnist_dvc`; no stage imports another, and nothing imports
a stage. Every stage process starts here (Python runs this package's `__init__` before the stage module's
own imports), so this is where the process gets what TensorFlow reads when it loads, before any stage
imports Keras.
"""

from mnist_dvc.process_setup import prepare_tensorflow_environment

prepare_tensorflow_environment()
