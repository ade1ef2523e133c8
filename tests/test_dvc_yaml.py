"""dvc.yaml is the map of the house: each stage declares exactly the code, data and params it reads."""

from __future__ import annotations

import dataclasses
import importlib
import shlex
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tools.code_deps import code_files, project_modules

PIPELINE = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
STAGES: dict[str, dict[str, Any]] = PIPELINE["stages"]
EXPECTED_ORDER = ["fetch", "preprocess", "train", "evaluate", "predict", "export"]


def entry_module(stage: dict[str, Any]) -> str:
    words = shlex.split(stage["cmd"])
    assert words[:2] == ["python", "-m"], f"stage cmd must be `python -m stages.<name>`: {stage['cmd']}"
    return words[2]


def declared(stage: dict[str, Any], kind: str) -> list[str]:
    return [next(iter(entry)) if isinstance(entry, dict) else entry for entry in stage.get(kind, [])]


def test_the_six_stages_in_order() -> None:
    assert list(STAGES) == EXPECTED_ORDER
    assert all(STAGES[name].get("desc") for name in EXPECTED_ORDER)


@pytest.mark.parametrize("name", EXPECTED_ORDER)
def test_code_dependencies_are_exactly_the_imported_modules(name: str) -> None:
    stage = STAGES[name]
    code_deps = {dep for dep in declared(stage, "deps") if dep.endswith(".py")}
    assert code_deps == set(code_files(entry_module(stage)))


@pytest.mark.parametrize("name", EXPECTED_ORDER)
def test_params_are_exactly_the_keys_of_the_schemas_the_stage_imports(name: str) -> None:
    """A stage's params in dvc.yaml are every key of each params schema module (`mnist_dvc.params.<section>`) its
    code imports, its own section among them: so a key no stage reads reruns nothing, and one it reads reruns it."""
    modules = project_modules(entry_module(STAGES[name]))
    schema_modules = sorted(
        module for module in modules if module.startswith("mnist_dvc.params.") and module != "mnist_dvc.params.loading"
    )
    assert f"mnist_dvc.params.{name}" in schema_modules
    keys = set()
    for module_name in schema_modules:
        schemas = [
            value
            for value in vars(importlib.import_module(module_name)).values()
            if dataclasses.is_dataclass(value) and getattr(value, "SECTION", None) and value.__module__ == module_name
        ]
        assert [schema.SECTION for schema in schemas] == [module_name.rsplit(".", 1)[1]], module_name
        keys |= {f"{schemas[0].SECTION}.{field.name}" for field in dataclasses.fields(schemas[0])}
    assert set(STAGES[name]["params"]) == keys


@pytest.mark.parametrize("name", EXPECTED_ORDER)
def test_cmd_paths_match_deps_and_outputs(name: str) -> None:
    stage = STAGES[name]
    words = shlex.split(stage["cmd"])
    paths = [word for flag, word in zip(words, words[1:], strict=False) if flag.startswith("--") and flag != "--params"]
    files = [p for p in declared(stage, "deps") if not p.endswith(".py")]
    files += declared(stage, "outs") + declared(stage, "metrics") + declared(stage, "plots")
    for path in paths:
        assert any(f == path or f.startswith(path + "/") for f in files), f"{name}: {path} is not declared"
    for file in files:
        if file.startswith("${"):  # data found through a params key (fetch.local_path): the stage reads that key
            assert file[2:-1] in stage["params"], f"{name}: {file} names a param the stage does not declare"
            continue
        assert any(file == p or file.startswith(p + "/") for p in paths), f"{name}: {file} is not in the cmd"


def test_committed_metrics_are_not_cached() -> None:
    for stage in STAGES.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                if path.startswith("metrics/"):
                    assert isinstance(entry, dict) and entry[path].get("cache") is False, path
