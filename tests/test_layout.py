"""The architecture's import rule: stage entry points on top, the library below them in layers.

- `stages/` holds the six stage entry points of `dvc.yaml` and nothing else; no stage imports another,
  and nothing but the tests imports a stage.
- Each library module sits in a layer and imports only from its own layer or the layers below.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tools.code_deps import imported_names

# The library's layers, top to bottom. A module imports from its own layer or lower ones only.
LAYERS: dict[str, int] = {
    # Commands: entry points of their own, outside the pipeline, which no library module imports (the old
    # name's module only runs the new one).
    "mnist_dvc.predict_images": 5,
    # `make serve`: the server over the API over the model it serves; nothing in the pipeline imports them.
    "mnist_dvc.web": 5,
    "mnist_dvc.web.server": 5,
    "mnist_dvc.web.api": 4,
    "mnist_dvc.web.openapi": 4,
    "mnist_dvc.web.served_model": 3,
    # `make sweep`: the command over the task a worker runs; the grid reads the params schemas.
    "mnist_dvc.sweep": 5,
    "mnist_dvc.sweep.command": 5,
    "mnist_dvc.sweep.task": 2,
    "mnist_dvc.sweep.supervise": 1,
    "mnist_dvc.sweep.grid": 1,
    "mnist_dvc.own_digits.command": 4,
    "mnist_dvc.own_digits.predictions": 3,
    "mnist_dvc.training": 3,
    "mnist_dvc.sources": 2,
    "mnist_dvc.sources.bundled": 2,
    "mnist_dvc.sources.url": 2,
    "mnist_dvc.sources.kaggle": 2,
    "mnist_dvc.sources.idx_folder": 2,
    "mnist_dvc.model": 2,
    "mnist_dvc.model.architectures": 2,
    "mnist_dvc.model.files": 2,
    "mnist_dvc.model.serving": 2,
    "mnist_dvc.model.export": 2,
    "mnist_dvc.formats": 1,
    "mnist_dvc.formats.idx": 1,
    "mnist_dvc.formats.kaggle_csv": 1,
    "mnist_dvc.formats.prepared_arrays": 1,
    "mnist_dvc.formats.training_log": 1,
    "mnist_dvc.reports": 1,
    "mnist_dvc.reports.charts": 1,
    "mnist_dvc.reports.digit_grids": 1,
    "mnist_dvc.sources.download": 1,
    "mnist_dvc.own_digits": 1,
    "mnist_dvc.own_digits.reading": 1,
    "mnist_dvc.own_digits.rendering": 1,
    "mnist_dvc.own_digits.example_drawings": 1,
    "mnist_dvc.reproducible_compute": 1,
    # Digits redrawn with an even pen: training uses it, and so does the fine-pen renderer (its centre lines).
    "mnist_dvc.pen_strokes": 1,
    # One schema per params section; fetch's reads the URL redaction of sources.download.
    "mnist_dvc.params.compute": 1,
    "mnist_dvc.params.evaluate": 1,
    "mnist_dvc.params.export": 1,
    "mnist_dvc.params.fetch": 1,
    "mnist_dvc.params.predict": 1,
    "mnist_dvc.params.preprocess": 1,
    "mnist_dvc.params.train": 1,
    "mnist_dvc": 0,
    "mnist_dvc.digit_arrays": 0,
    "mnist_dvc.splits": 0,
    "mnist_dvc.params": 0,
    "mnist_dvc.params.loading": 0,
    "mnist_dvc.errors": 0,
    "mnist_dvc.atomic_files": 0,
    "mnist_dvc.process_setup": 0,
    "mnist_dvc.input_files": 0,
    "mnist_dvc.archives": 0,
}


def module_name(path: Path) -> str:
    relative = path.relative_to(PROJECT_ROOT).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def project_imports(path: Path) -> set[str]:
    """The project modules a file imports (a `from package import module` counts as the module)."""
    names = imported_names(path.read_text())
    return {
        name
        for name in names
        if name.split(".")[0] in ("stages", "mnist_dvc")
        and (name in LAYERS or name.startswith("stages.") or name == "stages")
    }


def python_files(folder: str) -> list[Path]:
    return sorted((PROJECT_ROOT / folder).rglob("*.py"))


def test_stages_holds_exactly_the_stage_entry_points() -> None:
    pipeline = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
    entry_modules = {shlex.split(stage["cmd"])[2] for stage in pipeline["stages"].values()}
    assert {module_name(path) for path in python_files("stages")} == entry_modules | {"stages"}


@pytest.mark.parametrize("path", python_files("stages"), ids=lambda path: path.name)
def test_no_stage_imports_another_stage(path: Path) -> None:
    assert not {name for name in project_imports(path) if name.startswith("stages")}


@pytest.mark.parametrize("folder", ["mnist_dvc", "tools", "bench"])
def test_nothing_but_the_tests_imports_a_stage(folder: str) -> None:
    importers = {
        module_name(path)
        for path in python_files(folder)
        if any(name.split(".")[0] == "stages" for name in imported_names(path.read_text()))
    }
    assert not importers


def test_every_library_module_has_a_layer() -> None:
    assert {module_name(path) for path in python_files("mnist_dvc")} == set(LAYERS)


@pytest.mark.parametrize("path", python_files("mnist_dvc"), ids=lambda path: module_name(path))
def test_library_modules_import_only_from_their_layer_or_below(path: Path) -> None:
    layer = LAYERS[module_name(path)]
    upward = {name: LAYERS[name] for name in project_imports(path) if LAYERS.get(name, -1) > layer}
    assert not upward, f"{module_name(path)} (layer {layer}) imports from higher layers: {upward}"


@pytest.mark.parametrize("command", ["mnist_dvc.own_digits.command", "mnist_dvc.predict_images"])
def test_nothing_in_the_library_imports_a_command(command: str) -> None:
    importers = {
        module_name(path)
        for path in python_files("mnist_dvc")
        if command in project_imports(path)
        and not (command == "mnist_dvc.own_digits.command" and module_name(path) == "mnist_dvc.predict_images")
    }
    assert not importers


def test_the_console_scripts_run_the_commands() -> None:
    """Each console script `make install` puts in .venv/bin names a command's main, and runs it."""
    import subprocess
    import sys
    import tomllib

    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {
        "mnist-predict-images": "mnist_dvc.own_digits.command:main",
        "mnist-sweep": "mnist_dvc.sweep.command:main",
    }
    for script in scripts:
        found = subprocess.run(
            [str(Path(sys.executable).parent / script), "--help"], capture_output=True, text=True, check=False
        )
        assert found.returncode == 0 and "usage:" in found.stdout, (script, found.stderr)
