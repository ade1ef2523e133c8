"""The recognizer over HTTP: a page to draw on (or drop a photo on) and a JSON API, served by `make serve`.

`served_model` keeps the export stage's LiteRT file loaded and swaps in a new one when `dvc repro` replaces
it; `api` turns requests into answers (pure functions over bytes, tested without a socket); `server` is the
threaded HTTP server and its command line. Nothing here imports TensorFlow, and no pipeline stage imports this.
"""
