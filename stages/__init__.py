"""The MNIST digit-recognizer pipeline: one module per DVC stage plus the few modules they share."""

import os

# TensorFlow reads these once, when it is first imported, and any stage module may import Keras
# first, so they are set here, the one place every `python -m stages.<name>` passes through.
# oneDNN kernels: TensorFlow leaves them off on some x86 CPUs (AMD's among them), where they train
# the compact model about 1.6x faster. Log level 2 hides the C++ runtime's INFO lines and harmless
# graph-version notices that look like failures. A value the user sets wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
