"""predict: Kaggle's submission format."""

from __future__ import annotations

import numpy as np

from stages.predict import submission_csv


def test_submission_has_kaggles_header_and_ids_from_one() -> None:
    text = submission_csv(np.array([7, 2, 1]))
    assert text == "ImageId,Label\n1,7\n2,2\n3,1\n"
