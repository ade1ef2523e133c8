"""Atomic writes: a failure leaves the previous output (or none), never a half-written one."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mnist_dvc.atomic_files import atomic_directory, atomic_file, write_bytes_atomically, write_text_atomically


def test_a_file_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out" / "result.csv"
    with atomic_file(target) as temporary:
        temporary.write_text("partial")
        assert not target.exists()
        assert temporary.suffix == ".csv" and temporary.parent == target.parent
    assert target.read_text() == "partial"
    assert stat.S_IMODE(target.stat().st_mode) & 0o044  # readable by others, as a plain open() would make it


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "result.csv"
    write_text_atomically(target, "old\n")
    with pytest.raises(RuntimeError), atomic_file(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["result.csv"]


def test_a_directory_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "raw"
    with atomic_directory(target) as staging:
        (staging / "a").write_text("1")
        (staging / "b").write_text("2")
    with atomic_directory(target) as staging:
        (staging / "c").write_text("3")
    assert sorted(path.name for path in target.iterdir()) == ["c"]
    assert [path.name for path in tmp_path.iterdir()] == ["raw"]


def test_a_failed_directory_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "raw"
    with atomic_directory(target) as staging:
        (staging / "a").write_text("1")
    with pytest.raises(ValueError), atomic_directory(target) as staging:
        (staging / "b").write_text("2")
        raise ValueError("bad row")
    assert sorted(path.name for path in target.iterdir()) == ["a"]
    assert [path.name for path in tmp_path.iterdir()] == ["raw"]


def test_the_leftovers_of_a_killed_writer_are_removed_by_the_next_write(tmp_path: Path) -> None:
    """SIGKILL leaves the temporary behind (no `finally` runs); the next write of that path removes it, and
    nothing of any other path."""
    leftovers = [tmp_path / ".model.k3j_x9.tmp.keras", tmp_path / ".raw.a81zq.tmp", tmp_path / ".raw.77qwe.old"]
    leftovers[0].write_bytes(b"half a model")
    for folder in leftovers[1:]:
        folder.mkdir()
        (folder / "train-images-idx3-ubyte").write_bytes(b"half")
    others = [tmp_path / ".other.k3j_x9.tmp.keras", tmp_path / "model.keras.notes", tmp_path / ".raw_notes.tmp"]
    for other in others:
        other.write_text("keep")
    with atomic_file(tmp_path / "model.keras") as temporary:
        temporary.write_bytes(b"model")
    with atomic_directory(tmp_path / "raw") as folder:
        (folder / "train-images-idx3-ubyte").write_bytes(b"images")
    assert not any(leftover.exists() for leftover in leftovers)
    assert all(other.read_text() == "keep" for other in others)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [other.name for other in others] + ["model.keras", "raw"])


def test_bytes_and_text_are_written_whole_with_the_usual_permissions(tmp_path: Path) -> None:
    write_bytes_atomically(tmp_path / "models/model.onnx", b"\x08\x07onnx")
    write_text_atomically(tmp_path / "metrics/export.json", "{}\n")
    assert (tmp_path / "models/model.onnx").read_bytes() == b"\x08\x07onnx"
    assert (tmp_path / "metrics/export.json").read_text() == "{}\n"
    for path in (tmp_path / "models/model.onnx", tmp_path / "metrics/export.json"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044  # readable by others, as open() would make it
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["export.json", "metrics", "model.onnx", "models"]
