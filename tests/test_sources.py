"""fetch's sources: url (against a real HTTP server on 127.0.0.1), kaggle (folder, zip, CLI) and idx."""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import shutil
import stat
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnist_dvc.errors import PipelineError
from mnist_dvc.formats import idx
from mnist_dvc.params.fetch import FetchParams
from mnist_dvc.params.loading import load_section
from mnist_dvc.sources import url
from mnist_dvc.sources.download import ExpectedFile, Progress, download_verified
from mnist_dvc.sources.idx_folder import load_idx_folder
from mnist_dvc.sources.url import load_url
from stages import fetch
from stages.fetch import load_kaggle_source
from tests.conftest import PROJECT_ROOT, synthetic_digits
from tests.sources import (
    PRIVATE_PASSWORD,
    PRIVATE_USER,
    expected_files,
    gzipped_idx_files,
    kaggle_csv,
    loopback_mirrors,
)


def no_wait(_seconds: float) -> None:
    pass


@pytest.fixture
def splits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    train_images, train_labels = synthetic_digits(per_class=3, seed=1)
    test_images, test_labels = synthetic_digits(per_class=1, seed=2)
    return train_images, train_labels, test_images, test_labels


@pytest.fixture
def served(splits: tuple[np.ndarray, ...]) -> dict[str, bytes]:
    return gzipped_idx_files(*splits)


def default_params(**changes: object) -> FetchParams:
    params = load_section(PROJECT_ROOT / "params.yaml", "fetch", FetchParams)
    return dataclasses.replace(params, **changes)


# --- url ------------------------------------------------------------------------------------------


def test_url_source_downloads_verifies_and_decodes(served: dict[str, bytes], splits: tuple[np.ndarray, ...]) -> None:
    with loopback_mirrors(served) as server:
        params = default_params(source="url", mirrors=(server.mirror("good"),), timeout_seconds=5.0)
        loaded = load_url(
            params.mirrors, params.timeout_seconds, params.retries, files=expected_files(served), sleep=no_wait
        )
    for got, want in zip(
        (loaded.train_images, loaded.train_labels, loaded.test_images, loaded.test_labels), splits, strict=True
    ):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.predict_images, splits[2])


@pytest.mark.parametrize("first", ["missing", "corrupt", "stall", "flaky", "short"])
def test_a_bad_mirror_falls_through_to_the_next(first: str, served: dict[str, bytes]) -> None:
    name = "train-labels-idx1-ubyte.gz"
    expected = expected_files({name: served[name]})[0]
    with loopback_mirrors(served, stall_seconds=2.0) as server:
        payload = download_verified(
            expected,
            (server.mirror(first), server.mirror("good")),
            timeout_seconds=0.3,
            retries=1,
            sleep=no_wait,
            progress_stream=io.StringIO(),
        )
        requests = list(server.requests)
    assert payload == served[name]
    tried_first = [behaviour for behaviour, _ in requests if behaviour == first]
    if first == "flaky":  # a 503 is retried on the same mirror, which then answers
        assert requests == [("flaky", name), ("flaky", name)]
    elif first in ("missing", "corrupt"):  # retrying cannot help: straight to the next mirror
        assert tried_first == [first] and requests[-1] == ("good", name)
    else:  # timeouts and short reads are retried (retries=1), then the next mirror
        assert tried_first == [first, first] and requests[-1] == ("good", name)


def test_when_every_mirror_fails_the_error_lists_each_answer(served: dict[str, bytes]) -> None:
    name = "t10k-labels-idx1-ubyte.gz"
    expected = expected_files({name: served[name]})[0]
    with loopback_mirrors(served, stall_seconds=2.0) as server:
        mirrors = (server.mirror("missing"), server.mirror("corrupt"), server.mirror("stall"))
        with pytest.raises(PipelineError) as raised:
            download_verified(
                expected, mirrors, timeout_seconds=0.3, retries=0, sleep=no_wait, progress_stream=io.StringIO()
            )
    message = str(raised.value)
    assert message.startswith(f"{name}: expected {expected.size} bytes with sha256 {expected.sha256} from one of 3")
    assert f"{mirrors[0]}{name}: HTTP 404" in message
    assert f"{mirrors[1]}{name}: sha256 " in message and "file discarded" in message
    assert f"{mirrors[2]}{name}: no answer within 0.3 s (timed out)" in message


def test_a_mirror_that_refuses_connections_is_reported() -> None:
    with loopback_mirrors({}) as server:
        port = server.server_address[1]
    # The server is closed now: nothing listens on that port.
    expected = ExpectedFile("f.gz", 3, "0" * 64)
    with pytest.raises(PipelineError, match=rf"http://127.0.0.1:{port}/f.gz: could not connect"):
        download_verified(expected, (f"http://127.0.0.1:{port}",), 1.0, retries=1, sleep=no_wait)


def test_retries_wait_longer_each_time(served: dict[str, bytes]) -> None:
    waits: list[float] = []
    name = "train-labels-idx1-ubyte.gz"
    with loopback_mirrors(served) as server, pytest.raises(PipelineError):
        download_verified(
            expected_files({name: served[name]})[0],
            (server.mirror("stall"),),
            0.2,
            retries=3,
            sleep=waits.append,
            progress_stream=io.StringIO(),
        )
    assert waits == [1.0, 2.0, 4.0]


def test_progress_is_a_line_per_quarter_when_not_on_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress("downloading f", 1000, stream)
    for done in range(0, 1001, 10):
        progress.update(done)
    lines = stream.getvalue().splitlines()
    assert [line.split("] ")[1].split("%")[0].strip() for line in lines] == ["0", "25", "50", "75", "100"]
    assert lines[-1] == "downloading f [####################] 100% of 0.0 MB"


def test_main_with_the_url_source_writes_the_raw_layout(
    served: dict[str, bytes],
    splits: tuple[np.ndarray, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(url, "MNIST_URL_FILES", expected_files(served))
    with loopback_mirrors(served) as server:
        params = write_params(tmp_path, source="url", mirrors=[server.mirror("missing"), server.mirror("good")])
        assert fetch.main(["--params", str(params), "--out-dir", str(tmp_path / "raw")]) == 0
    assert sorted(path.name for path in (tmp_path / "raw").iterdir()) == sorted(idx.RAW_FILE_NAMES)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "raw" / idx.TEST_LABELS, 1), splits[3])
    assert "100% of" in capsys.readouterr().err


def test_the_published_mnist_files_are_the_canonical_four() -> None:
    assert [file.name for file in url.MNIST_URL_FILES] == [f"{name}.gz" for name in idx.RAW_FILE_NAMES[:4]]
    assert sum(file.size for file in url.MNIST_URL_FILES) == 11_594_722


def write_params(folder: Path, **fetch_changes: object) -> Path:
    import yaml

    document = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    document["fetch"].update(fetch_changes)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


# --- kaggle ---------------------------------------------------------------------------------------


@pytest.fixture
def kaggle_folder(tmp_path: Path) -> Path:
    images, labels = synthetic_digits(per_class=10, seed=3)
    unlabelled, _ = synthetic_digits(per_class=2, seed=4)
    folder = tmp_path / "kaggle"
    folder.mkdir()
    (folder / "train.csv").write_bytes(kaggle_csv(images, labels))
    (folder / "test.csv").write_bytes(kaggle_csv(unlabelled, None))
    return folder


def test_kaggle_csvs_become_a_stratified_holdout_and_images_to_predict(kaggle_folder: Path) -> None:
    loaded = load_kaggle_source(default_params(source="kaggle", local_path=str(kaggle_folder), kaggle_holdout_size=0.2))
    images, _labels = synthetic_digits(per_class=10, seed=3)
    unlabelled, _ = synthetic_digits(per_class=2, seed=4)
    assert np.bincount(loaded.test_labels).tolist() == [2] * 10
    assert np.bincount(loaded.train_labels).tolist() == [8] * 10
    # Every training row lands in exactly one of the two parts, pixels intact.
    together = np.concatenate([loaded.train_images, loaded.test_images]).reshape(100, -1)
    assert sorted(map(bytes, together)) == sorted(map(bytes, images.reshape(100, -1)))
    np.testing.assert_array_equal(loaded.predict_images, unlabelled)


def zip_of(folder: Path, target: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for name in ("train.csv", "test.csv", "sample_submission.csv"):
            archive.writestr(prefix + name, (folder / name).read_bytes() if name != "sample_submission.csv" else "")
    return target


@pytest.mark.parametrize("layout", ["zip file", "folder with a zip", "zip with a subfolder"])
def test_the_competitions_zip_reads_like_the_folder(layout: str, kaggle_folder: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    archive = zip_of(
        kaggle_folder, elsewhere / "digit-recognizer.zip", "digit-recognizer/" * (layout == "zip with a subfolder")
    )
    path = elsewhere if layout == "folder with a zip" else archive
    from_zip = load_kaggle_source(default_params(source="kaggle", local_path=str(path)))
    from_folder = load_kaggle_source(default_params(source="kaggle", local_path=str(kaggle_folder)))
    for field in dataclasses.fields(from_folder):
        np.testing.assert_array_equal(getattr(from_zip, field.name), getattr(from_folder, field.name))


def fake_kaggle_client(bin_dir: Path, script: str) -> None:
    bin_dir.mkdir()
    client = bin_dir / "kaggle"
    client.write_text("#!/bin/sh\n" + script)
    client.chmod(client.stat().st_mode | stat.S_IEXEC)


def test_without_files_the_kaggle_client_downloads_them(
    kaggle_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = zip_of(kaggle_folder, tmp_path / "prepared.zip")
    # Like the real client: `kaggle competitions download -c digit-recognizer -p DIR` writes DIR/digit-recognizer.zip.
    fake_kaggle_client(
        tmp_path / "bin",
        f'[ "$1 $2 $3 $4 $5" = "competitions download -c digit-recognizer -p" ] '
        f'|| exit 9\ncp "{archive}" "$6/digit-recognizer.zip"\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    target = tmp_path / "empty"
    loaded = load_kaggle_source(default_params(source="kaggle", local_path=str(target)))
    assert (target / "digit-recognizer.zip").is_file() and len(loaded.predict_images) == 20


def test_a_failing_kaggle_client_is_reported_with_its_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_kaggle_client(tmp_path / "bin", 'echo "401 - Unauthorized" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(
        PipelineError,
        match=r"kaggle competitions download -c digit-recognizer -p .*: expected it to "
        r"write .*digit-recognizer.zip. Received: exit status 1: 401 - Unauthorized",
    ):
        load_kaggle_source(default_params(source="kaggle", local_path=str(tmp_path / "none")))


def test_without_files_or_client_the_error_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(
        PipelineError,
        match=r"expected Kaggle's train.csv and test.csv, or digit-recognizer.zip .* "
        r"Received: notes.txt. The kaggle command-line client is not installed",
    ):
        load_kaggle_source(default_params(source="kaggle", local_path=str(tmp_path)))


# --- idx ------------------------------------------------------------------------------------------


def test_an_idx_folder_may_mix_plain_and_gzipped_files(
    served: dict[str, bytes], splits: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    for position, (name, payload) in enumerate(served.items()):
        if position % 2:
            (tmp_path / name).write_bytes(payload)
        else:
            (tmp_path / name.removesuffix(".gz")).write_bytes(gzip.decompress(payload))
    loaded = load_idx_folder(tmp_path)
    np.testing.assert_array_equal(loaded.train_images, splits[0])
    np.testing.assert_array_equal(loaded.test_labels, splits[3])
    np.testing.assert_array_equal(loaded.predict_images, splits[2])


def test_credentials_in_a_mirror_url_are_used_as_basic_auth_and_never_shown(
    served: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(url, "MNIST_URL_FILES", expected_files(served))
    secret = urllib.parse.quote(PRIVATE_PASSWORD, safe="")
    with loopback_mirrors(served) as server:
        private = server.mirror("private").replace("http://", f"http://{PRIVATE_USER}:{secret}@")
        wrong = server.mirror("private").replace("http://", f"http://{PRIVATE_USER}:not-{secret}@")
        params = write_params(tmp_path, source="url", mirrors=[wrong, private], retries=0)
        assert fetch.main(["--params", str(params), "--out-dir", str(tmp_path / "raw")]) == 0
        assert ("private", idx.TRAIN_IMAGES + ".gz") in server.requests
        bad = write_params(tmp_path, source="url", mirrors=[wrong], retries=0)
        assert fetch.main(["--params", str(bad), "--out-dir", str(tmp_path / "raw2")]) == 1
    output = capsys.readouterr()
    shown = output.out + output.err
    assert "HTTP 401" in shown and "http://***@127.0.0.1:" in shown
    assert secret not in shown and PRIVATE_PASSWORD not in shown and "not-" not in shown
