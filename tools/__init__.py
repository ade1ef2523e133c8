"""Developer tools around the pipeline: a temporary pipeline workspace and the CI reproducibility gate."""
