"""The command's old name: `python -m mnist_dvc.predict_images` is now `mnist-predict-images` (the console script;
`python -m mnist_dvc.own_digits.command`). This runs it, after saying so, so that scripts written for the old
name keep working."""

import sys

from mnist_dvc.own_digits.command import main

if __name__ == "__main__":
    print(
        "note: `python -m mnist_dvc.predict_images` is now `mnist-predict-images` "
        "(or `python -m mnist_dvc.own_digits.command`)",
        file=sys.stderr,
    )
    raise SystemExit(main())
