"""The pipeline's five stage entry points, one per DVC stage: `python -m stages.<name>`.

Each is a thin `main(argv)` over the library `mnist_dvc`; no stage imports another, and nothing imports
a stage. Importing the library first sets TensorFlow's environment before any stage imports Keras.
"""

import mnist_dvc  # noqa: F401
