"""Which project files a stage's code is made of: its entry module and every project module it imports.

`dvc.yaml` must list exactly these as each stage's code dependencies (tests/test_dvc_yaml.py checks it),
so that DVC reruns a stage when, and only when, code that can change its outputs changes. Importing
`a.b.c` runs `a/__init__.py` and `a/b/__init__.py` too, so packages count with their `__init__.py`.

    .venv/bin/python -m tools.code_deps stages.train   # prints train's code files, one per line
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tools.workspace import PROJECT_ROOT

PROJECT_PACKAGES = ("stages", "mnist_dvc")


def module_file(module: str, root: Path = PROJECT_ROOT) -> Path | None:
    """The file that defines `module` in the project (a module file or a package's `__init__.py`)."""
    base = root / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(source: str) -> set[str]:
    """Every module name an `import` or `from ... import ...` in `source` may refer to."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def project_modules(entry: str, root: Path = PROJECT_ROOT) -> set[str]:
    """`entry` and every project module it imports, transitively, packages included."""
    seen: set[str] = set()
    pending = with_parents(entry)
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        path = module_file(current, root)
        if path is None:
            continue  # `from package import name` where name is not a module
        seen.add(current)
        for name in imported_names(path.read_text()):
            if name.split(".")[0] in PROJECT_PACKAGES:
                pending += with_parents(name)
    return seen


def code_files(entry: str, root: Path = PROJECT_ROOT) -> list[str]:
    """The files of `project_modules(entry)`, relative to `root`, sorted."""
    return sorted(
        module_file(module, root).relative_to(root).as_posix()  # type: ignore[union-attr]
        for module in project_modules(entry, root)
    )


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print("\n".join(code_files(name)))
