"""The library of the MNIST digit-recognizer pipeline: what the stage entry points in `stages/` share.

Layers, each importing only from those below it (a test enforces it): `stages/` (entry points) on top;
then `own_image_predictions`, `predict_images`; `model/`, `reports/`, `sources/`, `formats/`, `own_images`,
`reproducible_compute`; and at the bottom `digit_arrays`, `splits`, `params`, `errors`, `atomic_files`,
`process_setup`.

Importing it, or any of its modules, changes nothing in the process: what a process needs set before
TensorFlow loads is set where the process starts (`mnist_dvc.process_setup.prepare_tensorflow_environment`).
"""
