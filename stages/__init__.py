"""The MNIST digit-recognizer pipeline: one module per DVC stage plus the few modules they share."""
