"""Reading zip archives a user hands the pipeline (Kaggle's zip, a `.keras` model) with bounded memory.

A zip member declares its inflated size, and a few kilobytes can declare (and inflate to) gigabytes. So
before anything is inflated, each member must declare at most `MAX_INFLATION_RATIO` times its compressed
size (real files inflate far less: Kaggle's CSVs about 8 times, a model's weights about once), or at
most `SMALL_MEMBER_BYTES` however well it compresses. While reading, `zipfile` stops at the declared
size and checks the CRC, so a member that inflates to more than it declares is an error too; members are
read in chunks, because `ZipFile.read` inflates everything the compressed bytes hold before it cuts at
the declared size. Member names must stay inside the archive (no absolute path, no `..`), and encrypted
members and compression methods Python cannot read are named as such.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import PurePosixPath

from mnist_dvc.errors import PipelineError

# What zipfile raises for a damaged archive, besides BadZipFile: a damaged deflate, bzip2 or lzma stream,
# a cut-off file, offsets past its end (a seek to a negative position is an OSError).
ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)

MAX_INFLATION_RATIO = 100
SMALL_MEMBER_BYTES = 16 * 1024 * 1024
_CHUNK_BYTES = 1024 * 1024


def inflation_limit(compressed_size: int) -> int:
    """The most bytes a member of `compressed_size` compressed bytes may inflate to."""
    return max(MAX_INFLATION_RATIO * compressed_size, SMALL_MEMBER_BYTES)


def check_member(info: zipfile.ZipInfo, where: str) -> None:
    """Refuse a member that escapes the archive's folder, is encrypted, or declares an inflation beyond the limit.

    `where` names the archive in errors.
    """
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        raise PipelineError(f"{where}: expected members named inside the archive. Received: a member named {name!r}")
    if info.flag_bits & 0x1:
        raise PipelineError(
            f"{where}:{name}: expected an unencrypted zip member. Received: an encrypted one "
            "(unzip it with its password first)"
        )
    limit = inflation_limit(info.compress_size)
    if info.file_size > limit:
        raise PipelineError(
            f"{where}:{name}: expected a member that inflates to at most {MAX_INFLATION_RATIO} times its "
            f"compressed size ({limit} bytes here). Received: {info.compress_size} bytes declaring "
            f"{info.file_size} (a zip bomb?)"
        )


def check_archive(archive: zipfile.ZipFile, where: str) -> None:
    """`check_member` for every member of `archive`, then each one inflated in chunks and thrown away, so that
    a member inflating to more than it declares (or failing its CRC) is found before another reader, which
    may inflate a whole member at once, opens it."""
    for info in archive.infolist():
        check_member(info, where)
    for info in archive.infolist():
        for _chunk in _chunks(archive, info, where):
            pass


def read_member(archive: zipfile.ZipFile, name: str, where: str) -> bytes:
    """The inflated bytes of member `name`, checked first; an unreadable compression method is a clear error."""
    info = archive.getinfo(name)
    check_member(info, where)
    return b"".join(_chunks(archive, info, where))


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> Iterator[bytes]:
    """The member's inflated bytes, at most `_CHUNK_BYTES` at a time."""
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK_BYTES):
                yield chunk
    except NotImplementedError as error:
        raise PipelineError(
            f"{where}:{info.filename}: expected a zip member stored or compressed with deflate, "
            f"bzip2 or lzma. Received: compression method {info.compress_type} ({error})"
        ) from None
