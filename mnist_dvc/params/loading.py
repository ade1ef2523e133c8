"""Loading one section of `params.yaml` into a frozen, typed dataclass, with every value checked.

Each stage declares its own section as a dataclass (so a change to one stage's schema reruns that stage
alone); this module holds only the generic part: reading the file, rejecting unknown and missing keys,
checking types, and giving range checks one message format:
`params.yaml: train.epochs must be a positive integer. Received: 0`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mnist_dvc.errors import ParamsError
from mnist_dvc.input_files import read_input_bytes

SectionT = TypeVar("SectionT")

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


# Deeper than this, a params document is not a params document (PyYAML would recurse until it crashes).
MAX_NESTING = 50


class _DuplicateKey(Exception):
    def __init__(self, key: object, first_line: int, second_line: int) -> None:
        super().__init__(key, first_line, second_line)
        self.key, self.first_line, self.second_line = key, first_line, second_line


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key that appears twice in one mapping (YAML says keys are unique;
    PyYAML silently keeps the last) and mappings or lists nested deeper than MAX_NESTING."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth: int = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_NESTING:
                raise yaml.YAMLError(f"nested more than {MAX_NESTING} levels deep (line {self.get_mark().line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        first_lines: dict[object, int] = {}
        for key_node, _value in node.value:
            # A merge key (`<<: *defaults`) is YAML's way to take keys from another mapping, where a key
            # written here overrides a merged one: not a duplicate, and merged by the base class below.
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in first_lines:
                    raise _DuplicateKey(key, first_lines[key], line)
                first_lines[key] = line
            except TypeError:  # an unhashable key: PyYAML's own error says so below
                pass
        return super().construct_mapping(node, deep)


def read_params_file(path: Path) -> dict[str, Any]:
    """Parse a params YAML file into a mapping of section name to section mapping."""
    payload = read_input_bytes(path, "a params file", ParamsError)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ParamsError(
            f"{path}: expected a UTF-8 text file. Received: bytes that are not text "
            f"(0x{payload[error.start]:02x} at byte {error.start})"
        ) from None
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as duplicate:
        raise ParamsError(
            f"{path}: expected each key once per section. Received: {duplicate.key!r} on lines "
            f"{duplicate.first_line} and {duplicate.second_line}"
        ) from None
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: expected valid YAML. Received: {error}") from None
    if not isinstance(document, dict):
        raise ParamsError(f"{path}: expected a mapping of sections. Received: {type(document).__name__}")
    return document


def parse_section(document: Mapping[str, Any], section: str, schema: type[SectionT], source: str) -> SectionT:
    """Build the dataclass `schema` from `document[section]`, checking keys, types and ranges.

    `source` (the file name) prefixes every error message. Ranges are checked by the dataclass's own
    `__post_init__`, which raises `ParamsError` through `check`.
    """
    raw = document.get(section)
    if not isinstance(raw, dict):
        received = "no such section" if raw is None else repr(raw)
        raise ParamsError(f"{source}: expected a section '{section}' holding a mapping. Received: {received}")
    fields = {field.name: field for field in dataclasses.fields(schema)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(schema)
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"{source}: unknown key {section}.{unknown[0]}. Expected one of: {', '.join(sorted(fields))}")
    missing = sorted(name for name in fields if name not in raw)
    if missing:
        raise ParamsError(f"{source}: missing key {section}.{missing[0]}")
    values = {name: _coerce(raw[name], hints[name], f"{section}.{name}", source) for name in fields}
    try:
        return schema(**values)
    except ParamsError as error:
        raise ParamsError(f"{source}: {error}") from None


def load_section(path: Path, section: str, schema: type[SectionT]) -> SectionT:
    """Read `path` and return its `section` as a validated `schema` instance."""
    return parse_section(read_params_file(path), section, schema, source=str(path))


def check(condition: bool, key: str, expected: str, received: object) -> None:
    """Raise `ParamsError` naming `key` unless `condition` holds."""
    if not condition:
        raise ParamsError(f"{key} must be {expected}. Received: {received!r}")


def check_each(values: tuple[Any, ...], predicate: Callable[[Any], bool], key: str, expected: str) -> None:
    """Check every element of a list-valued param."""
    for value in values:
        check(predicate(value), key, expected, value)


def _coerce(value: Any, expected_type: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(expected_type)
    if origin is tuple:
        (element_type, _ellipsis) = typing.get_args(expected_type)
        if not isinstance(value, list):
            raise ParamsError(f"{source}: {key} must be a list. Received: {value!r}")
        return tuple(_coerce(element, element_type, key, source) for element in value)
    # bool is a subclass of int in Python; `epochs: true` is a mistake, not 1.
    is_bool = isinstance(value, bool)
    if expected_type is bool and is_bool:
        return value
    if expected_type is int and isinstance(value, int) and not is_bool:
        return value
    if expected_type is float and isinstance(value, (int, float)) and not is_bool:
        return float(value)
    if expected_type is str and isinstance(value, str):
        return value
    raise ParamsError(f"{source}: {key} must be {_TYPE_NAMES[expected_type]}. Received: {value!r}")
