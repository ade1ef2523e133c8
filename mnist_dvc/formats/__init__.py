"""File formats: IDX (MNIST's own), Kaggle's CSVs, the prepared .npy arrays, the logged training curves."""
