"""The combinations of a sweep: `-S train.learning_rate=0.003,0.005 -S train.random_seed=0,1` gives four.

Keys are checked here, before anything runs, against the params schemas the stages load (a section and a
key params.yaml has); values are the stages' to judge, on the workers, so that one bad value fails its
own combinations and the others still run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import itertools
import re

import yaml

from mnist_dvc.errors import ParamsError

# What may appear in a value list entry: `dvc exp run -S` reads each value as YAML; a comma separates values.
_SETTING = re.compile(r"^(?P<section>[a-z_]+)\.(?P<key>[a-z_]+)=(?P<values>.+)$")


@dataclasses.dataclass(frozen=True)
class Combination:
    """One point of the grid: its experiment name and its `section.key=value` settings (as `dvc exp run -S`)."""

    name: str
    settings: tuple[str, ...]


def parse_option(text: str) -> tuple[str, list[str]]:
    """`section.key=v1,v2` to ("section.key", ["v1", "v2"]); raises ParamsError naming what is wrong."""
    found = _SETTING.match(text.strip())
    if not found:
        raise ParamsError(f"-S {text!r}: expected section.key=value[,value...] (e.g. train.random_seed=0,1)")
    values = [value.strip() for value in found["values"].split(",")]
    if any(not value for value in values):
        raise ParamsError(f"-S {text!r}: expected a value between each comma. Received: an empty one")
    for value in values:
        try:
            yaml.safe_load(value)
        except yaml.YAMLError:
            raise ParamsError(f"-S {text!r}: expected YAML values. Received: {value!r}") from None
    return f"{found['section']}.{found['key']}", values


def check_key(name: str) -> None:
    """Refuse a `section.key` that params.yaml's schemas do not have (the same schemas the stages load)."""
    section, key = name.split(".", 1)
    try:
        module = importlib.import_module(f"mnist_dvc.params.{section}")
    except ModuleNotFoundError:
        raise ParamsError(f"-S {name}: params.yaml has no section {section!r}") from None
    schemas = [value for value in vars(module).values() if getattr(value, "SECTION", None) == section]
    if not schemas or key not in {field.name for field in dataclasses.fields(schemas[0])}:
        raise ParamsError(f"-S {name}: params.yaml's section {section!r} has no key {key!r}")


def combinations(options: list[str], prefix: str) -> list[Combination]:
    """Every combination of the options' values (the cartesian product, in the order given), each named
    `prefix-NN`. A key given twice is refused."""
    parsed = [parse_option(option) for option in options]
    names = [name for name, _values in parsed]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ParamsError(f"-S {repeated[0]}: expected each key once. Received: it {names.count(repeated[0])} times")
    for name in names:
        check_key(name)
    grid = itertools.product(*[[f"{name}={value}" for value in values] for name, values in parsed])
    return [Combination(f"{prefix}-{index:02d}", tuple(settings)) for index, settings in enumerate(grid, start=1)]


def default_prefix(commit: str, options: list[str]) -> str:
    """`sweep-<commit>-<digest of the options>`: the same sweep of the same commit has the same names, so a
    rerun replaces its experiments instead of listing them twice."""
    digest = hashlib.sha256("\n".join(sorted(options)).encode()).hexdigest()[:6]
    return f"sweep-{commit[:7]}-{digest}"
