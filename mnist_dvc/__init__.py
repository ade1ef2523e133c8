"""The library of the MNIST digit-recognizer pipeline: what the stage entry points in `stages/` share.

Layers, each importing only from those below it (a test enforces it): `stages/` (entry points) on top;
then `own_image_predictions`, `predict_images`; `model/`, `reports/`, `sources/`, `formats/`, `own_images`,
`compute`; and at the bottom `digits`, `splits`, `params`, `errors`, `atomic_files`, `runtime`.
"""

import os

# TensorFlow reads these once, when it is first imported, and a stage module may import Keras before
# anything else: every stage passes through this package first (`stages/__init__.py` imports it).
# oneDNN kernels: TensorFlow leaves them off on some x86 CPUs (AMD's among them), where they train
# the compact model about 1.6x faster. Log level 2 hides the C++ runtime's INFO lines and harmless
# graph-version notices that look like failures. A value the user sets wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
