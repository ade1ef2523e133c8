"""params.yaml loading: unknown, missing, mistyped and out-of-range values fail naming the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from mnist_dvc.errors import ParamsError
from mnist_dvc.params.compute import ComputeParams
from mnist_dvc.params.evaluate import EvaluateParams
from mnist_dvc.params.fetch import FetchParams
from mnist_dvc.params.loading import load_section, parse_section, read_params_file
from mnist_dvc.params.predict import PredictParams
from mnist_dvc.params.preprocess import PreprocessParams
from mnist_dvc.params.train import TrainParams
from tests.conftest import PROJECT_ROOT

SCHEMAS = (FetchParams, PreprocessParams, ComputeParams, TrainParams, EvaluateParams, PredictParams)


def default_section(schema: type) -> dict[str, Any]:
    return dict(read_params_file(PROJECT_ROOT / "params.yaml")[schema.SECTION])


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda schema: schema.SECTION)
def test_the_committed_params_file_is_valid(schema: type) -> None:
    section = load_section(PROJECT_ROOT / "params.yaml", schema.SECTION, schema)
    assert dataclasses.is_dataclass(section)


def test_sections_are_frozen() -> None:
    params = load_section(PROJECT_ROOT / "params.yaml", "train", TrainParams)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.epochs = 3  # type: ignore[misc]


def parse(schema: type, **changes: Any) -> Any:
    section = default_section(schema)
    section.update(changes)
    return parse_section({schema.SECTION: section}, schema.SECTION, schema, source="params.yaml")


def test_unknown_key_is_named() -> None:
    with pytest.raises(ParamsError, match=r"params.yaml: unknown key train.epoch\b"):
        parse(TrainParams, epoch=3)


def test_missing_key_is_named() -> None:
    section = default_section(TrainParams)
    del section["batch_size"]
    with pytest.raises(ParamsError, match=r"params.yaml: missing key train.batch_size"):
        parse_section({"train": section}, "train", TrainParams, source="params.yaml")


def test_missing_section_is_named() -> None:
    with pytest.raises(ParamsError, match=r"expected a section 'predict'"):
        parse_section({}, "predict", PredictParams, source="params.yaml")


@pytest.mark.parametrize(
    ("schema", "key", "value", "message"),
    [
        (TrainParams, "epochs", "ten", r"train.epochs must be an integer. Received: 'ten'"),
        (TrainParams, "epochs", True, r"train.epochs must be an integer. Received: True"),
        (TrainParams, "epochs", 2.5, r"train.epochs must be an integer. Received: 2.5"),
        (TrainParams, "learning_rate", "fast", r"train.learning_rate must be a number"),
        (TrainParams, "model", 3, r"train.model must be a string"),
        (FetchParams, "source", None, r"fetch.source must be a string. Received: None"),
    ],
)
def test_wrong_types_are_refused(schema: type, key: str, value: Any, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse(schema, **{key: value})


@pytest.mark.parametrize(
    ("schema", "key", "value", "message"),
    [
        (FetchParams, "source", "ftp", r"fetch.source must be one of: bundled, url, kaggle, idx. Received: 'ftp'"),
        (FetchParams, "local_path", " ", r"fetch.local_path must be a path to a folder or file"),
        (FetchParams, "mirrors", ["ftp://example.org/"], r"fetch.mirrors must be a list of http:// or https:// URLs"),
        (FetchParams, "timeout_seconds", 0, r"fetch.timeout_seconds must be a number of seconds in \(0, 3600\]"),
        (FetchParams, "retries", 11, r"fetch.retries must be an integer from 0 to 10. Received: 11"),
        (FetchParams, "kaggle_holdout_size", 1.0, r"fetch.kaggle_holdout_size must be a fraction strictly between"),
        (FetchParams, "kaggle_holdout_seed", -1, r"fetch.kaggle_holdout_seed must be a non-negative integer"),
        (FetchParams, "max_train_images", -1, r"fetch.max_train_images must be 0 \(all\) or a positive integer"),
        (FetchParams, "max_test_images", -5, r"fetch.max_test_images must be 0 \(all\)"),
        (PreprocessParams, "validation_size", 0, r"preprocess.validation_size must be a fraction strictly between"),
        (PreprocessParams, "validation_size", 1, r"preprocess.validation_size must be a fraction strictly between"),
        (PreprocessParams, "random_seed", -1, r"preprocess.random_seed must be a non-negative integer"),
        (TrainParams, "model", "resnet", r"train.model must be one of: compact, tutorial. Received: 'resnet'"),
        (
            TrainParams,
            "model",
            "seed",
            r"train.model must be one of: compact, tutorial \(`seed` is now called `tutorial`\)",
        ),
        (TrainParams, "compact_filters", [64], r"train.compact_filters must be a list of at least 2 filter counts"),
        (
            TrainParams,
            "compact_filters",
            [32, 0, 64],
            r"train.compact_filters must be a list of integers in \[1, 1024\]. Received: 0",
        ),
        (
            TrainParams,
            "compact_filters",
            [32, 6400],
            r"train.compact_filters must be a list of integers in \[1, 1024\]. Received: 6400",
        ),
        (TrainParams, "compact_filters", [32, 64.5], r"train.compact_filters must be an integer. Received: 64.5"),
        (TrainParams, "compact_filters", 64, r"train.compact_filters must be a list. Received: 64"),
        (TrainParams, "epochs", 0, r"train.epochs must be a positive integer. Received: 0"),
        (TrainParams, "epochs", -3, r"train.epochs must be a positive integer. Received: -3"),
        (TrainParams, "batch_size", 0, r"train.batch_size must be a positive integer"),
        (TrainParams, "learning_rate", 0.0, r"train.learning_rate must be a number in \(0, 1\]"),
        (TrainParams, "schedule", "step", r"train.schedule must be one of: constant, cosine"),
        (TrainParams, "warmup_epochs", 99, r"train.warmup_epochs must be a non-negative integer smaller than"),
        (TrainParams, "early_stopping_patience", -1, r"train.early_stopping_patience must be 0 \(off\)"),
        (TrainParams, "label_smoothing", 1.0, r"train.label_smoothing must be a number in \[0, 1\)"),
        (TrainParams, "max_rotation_degrees", 200.0, r"train.max_rotation_degrees must be"),
        (TrainParams, "max_zoom", -0.1, r"train.max_zoom must be a fraction in \[0, 1\)"),
        (TrainParams, "max_shift_pixels", 20.0, r"train.max_shift_pixels must be a number of pixels"),
        (
            TrainParams,
            "max_stroke_width_change",
            2.5,
            r"train.max_stroke_width_change must be a number of pixels in \[0, 2",
        ),
        (
            TrainParams,
            "max_stroke_width_change",
            -1.0,
            r"train.max_stroke_width_change must be a number of pixels in \[0,",
        ),
        (TrainParams, "max_elastic_pixels", 9.0, r"train.max_elastic_pixels must be a number of pixels in \[0, 5\]"),
        (TrainParams, "redrawn_share", 1.5, r"train.redrawn_share must be a fraction in \[0, 1\]. Received: 1.5"),
        (TrainParams, "redrawn_share", -0.1, r"train.redrawn_share must be a fraction in \[0, 1\]"),
        (TrainParams, "redrawn_pen_widths", [4.0, 1.5], r"train.redrawn_pen_widths must be \[narrowest, widest\]"),
        (TrainParams, "redrawn_pen_widths", [0.0, 3.0], r"train.redrawn_pen_widths must be .* Received: \[0.0, 3.0\]"),
        (TrainParams, "redrawn_pen_widths", [1.5, 9.0], r"train.redrawn_pen_widths must be .*<= 8.0"),
        (TrainParams, "redrawn_pen_widths", [2.0], r"train.redrawn_pen_widths must be \[narrowest, widest\]"),
        (TrainParams, "redrawn_pen_widths", 2.0, r"train.redrawn_pen_widths must be a list. Received: 2.0"),
        # params.yaml trains on the validation images too: early stopping has no validation loss to watch
        (TrainParams, "early_stopping_patience", 3, r"train.early_stopping_patience must be 0 when train.include_v"),
        (ComputeParams, "threads", -1, r"compute.threads must be 0 \(one per available CPU\)"),
        (EvaluateParams, "batch_size", 0, r"evaluate.batch_size must be a positive integer"),
        (EvaluateParams, "max_misclassified_shown", -1, r"evaluate.max_misclassified_shown must be"),
        (PredictParams, "samples_shown", -2, r"predict.samples_shown must be a non-negative integer"),
    ],
)
def test_out_of_range_values_are_refused(schema: type, key: str, value: Any, message: str) -> None:
    with pytest.raises(ParamsError, match=r"params.yaml: " + message):
        parse(schema, **{key: value})


def test_the_url_source_needs_a_mirror() -> None:
    with pytest.raises(ParamsError, match=r"fetch.mirrors must be at least one mirror URL when fetch.source is url"):
        parse(FetchParams, source="url", mirrors=[])
    assert parse(FetchParams, source="bundled", mirrors=[]).mirrors == ()


def test_a_list_param_must_be_a_list() -> None:
    with pytest.raises(ParamsError, match=r"fetch.mirrors must be a list. Received: 'https://example.org/'"):
        parse(FetchParams, mirrors="https://example.org/")


def test_integers_are_accepted_for_float_keys() -> None:
    params = parse(TrainParams, max_zoom=0)
    assert params.max_zoom == 0.0 and isinstance(params.max_zoom, float)


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"nope.yaml: expected a params file. Received: no such file"):
        read_params_file(tmp_path / "nope.yaml")


def test_invalid_yaml_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params.yaml: expected valid YAML"):
        read_params_file(path)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ParamsError, match=r"expected a mapping of sections. Received: list"):
        read_params_file(path)


def test_a_yaml_merge_key_is_read_as_yaml_defines_it(tmp_path: Path) -> None:
    """`<<: *defaults` takes the anchored mapping's keys, and a key written beside it overrides the merged one:
    valid YAML, read as `yaml.safe_load` reads it, and no duplicate; a key written twice beside it still is."""
    path = tmp_path / "params.yaml"
    path.write_text("defaults: &defaults\n  batch_size: 128\n  epochs: 3\nrun:\n  <<: *defaults\n  epochs: 5\n")
    assert read_params_file(path) == yaml.safe_load(path.read_text())
    assert read_params_file(path)["run"] == {"batch_size": 128, "epochs": 5}
    path.write_text("defaults: &defaults\n  batch_size: 128\nrun:\n  <<: *defaults\n  epochs: 5\n  epochs: 6\n")
    with pytest.raises(ParamsError, match=r"expected each key once per section. Received: 'epochs' on lines 5 and 6"):
        read_params_file(path)
