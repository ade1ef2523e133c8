"""Atomic writes: a failure leaves the previous output (or none), never a half-written one."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from mnist_dvc.atomic_files import (
    atomic_directory,
    atomic_file,
    outputs_move_together,
    write_bytes_atomically,
    write_text_atomically,
)
from mnist_dvc.errors import PipelineError


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
        [other.name for other in others] + ["model.keras", "raw"]
    )


def test_bytes_and_text_are_written_whole_with_the_usual_permissions(tmp_path: Path) -> None:
    write_bytes_atomically(tmp_path / "models/model.onnx", b"\x08\x07onnx")
    write_text_atomically(tmp_path / "metrics/export.json", "{}\n")
    assert (tmp_path / "models/model.onnx").read_bytes() == b"\x08\x07onnx"
    assert (tmp_path / "metrics/export.json").read_text() == "{}\n"
    for path in (tmp_path / "models/model.onnx", tmp_path / "metrics/export.json"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044  # readable by others, as open() would make it
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["export.json", "metrics", "model.onnx", "models"]


def test_outputs_written_together_appear_only_when_the_last_one_is_complete(tmp_path: Path) -> None:
    with outputs_move_together():
        write_bytes_atomically(tmp_path / "models/model.onnx", b"onnx")
        with atomic_directory(tmp_path / "metrics/training") as folder:
            (folder / "metrics.json").write_text("{}")
        assert not (tmp_path / "models/model.onnx").exists() and not (tmp_path / "metrics/training").exists()
    assert (tmp_path / "models/model.onnx").read_bytes() == b"onnx"
    assert (tmp_path / "metrics/training/metrics.json").read_text() == "{}"
    assert sorted(path.name for path in tmp_path.rglob("*")) == [
        "metrics",
        "metrics.json",
        "model.onnx",
        "models",
        "training",
    ]


def test_a_failure_on_the_second_output_leaves_every_previous_output_in_place(tmp_path: Path) -> None:
    """A stage's outputs move together or not at all: the first output's new bytes never sit beside the old
    second output."""
    first, second = tmp_path / "model.onnx", tmp_path / "model.tflite"
    write_bytes_atomically(first, b"old onnx")
    write_bytes_atomically(second, b"old tflite")
    with pytest.raises(RuntimeError, match="converter crashed"), outputs_move_together():
        write_bytes_atomically(first, b"new onnx")
        with atomic_file(second) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("converter crashed")
    assert (first.read_bytes(), second.read_bytes()) == (b"old onnx", b"old tflite")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.onnx", "model.tflite"]


def test_a_failed_move_puts_back_the_outputs_already_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second rename fails (as root no permission can refuse it, so the rename itself is made to fail): the
    first output, already moved, gets its previous version back, and the error names the output that failed."""
    first, second = tmp_path / "export.json", tmp_path / "model.onnx"
    write_text_atomically(first, "old\n")
    write_bytes_atomically(second, b"old onnx")
    real_replace = os.replace

    def replace_failing_for_the_new_onnx(source: str | Path, target: str | Path) -> None:
        if Path(target) == second and ".tmp" in Path(source).name:
            raise OSError(errno.EIO, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_failing_for_the_new_onnx)
    with pytest.raises(PipelineError, match=r"model\.onnx: expected to write it. Received: Input/output error"):
        with outputs_move_together():
            write_text_atomically(first, "new\n")
            write_bytes_atomically(second, b"new onnx")
    assert (first.read_text(), second.read_bytes()) == ("old\n", b"old onnx")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export.json", "model.onnx"]
