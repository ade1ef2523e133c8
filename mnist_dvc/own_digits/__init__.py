"""People's own digits: reading photos, scans and drawings and normalising them the way MNIST was made
(`reading`), predicting them with any model and reporting the predictions (`predictions`), and the
synthetic handwriting the project measures that on (`rendering`: MNIST digits redrawn in pen styles;
`example_drawings`: the example images of `data/own_digits/`).

`command` is the command line, `mnist-predict-images IMAGE_OR_FOLDER...` (a console script; also
`python -m mnist_dvc.own_digits.command`): an entry point, which no library module imports.
"""
