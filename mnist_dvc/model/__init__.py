"""The CNN architectures, their saved files, and how the model is built and loaded."""
