"""Unpacking a downloaded archive (`.tar`, `.tar.gz`, `.zip`) only after every member has been
checked from its header: the size it unpacks to, the number of members, how deep they lie, and
that each is a file or a folder inside the archive's directory; each refusal one `ModelError`.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from typing import Iterable

from keras_alexnet.errors import ModelError

# The most bytes a preset archive may have, and may unpack to: far above the largest network.
MAX_ARCHIVE_BYTES = 2 * 2 ** 30
# Weights barely compress (a shipped preset's `.tar.gz` is 90–92 % of its size), so a preset
# unpacks to little more than its archive: at most this many times its size, or
# `MIN_UNPACKED_LIMIT` for archives of a few kB; a small archive of zeros is refused.
MAX_UNPACK_RATIO = 20
MIN_UNPACKED_LIMIT = 64 * 2 ** 20
MAX_MEMBERS = 1000  # a preset is three files
MAX_MEMBER_DEPTH = 16  # folders above a file: a preset's lie one deep


def unpack(archive: str, directory: str, url: str) -> None:
    """Unpacks the `.tar(.gz)` or `.zip` archive at `archive` (downloaded from `url`, which the
    errors name) into `directory`, once `_check_members` passed its members; on an error
    nothing of `directory` is left.

    Raises:
        ModelError: A member refused by `_check_members`, or not an archive.
    """
    limit = max(MIN_UNPACKED_LIMIT, MAX_UNPACK_RATIO * os.path.getsize(archive))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as opened:
                _check_members(map(_zip_member, opened.infolist()), url, limit)
                opened.extractall(directory)
        else:
            with tarfile.open(archive) as opened:
                _check_members(map(_tar_member, opened), url, limit)
                opened.extractall(directory, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
        shutil.rmtree(directory, ignore_errors=True)
        raise ModelError(f"preset {url!r} is not a .tar.gz or .zip archive of a preset "
                         f"({error})") from error


def _tar_member(member: tarfile.TarInfo) -> tuple[str, int, str]:
    """A tar member's name, size and kind (`file`, `folder`, or what else it is)."""
    kinds = {tarfile.SYMTYPE: "symbolic link", tarfile.LNKTYPE: "hard link",
             tarfile.CHRTYPE: "device", tarfile.BLKTYPE: "device", tarfile.FIFOTYPE: "FIFO"}
    kind = "file" if member.isreg() else "folder" if member.isdir() else kinds.get(
        member.type, "special file")
    return member.name, member.size, kind


def _zip_member(member: zipfile.ZipInfo) -> tuple[str, int, str]:
    """A zip member's name, size and kind, from the Unix mode its creator recorded (if any)."""
    mode = member.external_attr >> 16
    kind = ("folder" if member.is_dir() else "file" if not mode or stat.S_ISREG(mode)
            else "symbolic link" if stat.S_ISLNK(mode) else "special file")
    return member.filename, member.file_size, kind


def _check_members(members: Iterable[tuple[str, int, str]], url: str, limit: int) -> None:
    """Refuses an archive of more than `MAX_MEMBERS` members, unpacking to more than `limit`
    bytes, or holding anything but files and folders, or a path outside its directory or
    deeper than `MAX_MEMBER_DEPTH`; stops reading at the first."""
    total = 0
    for count, (name, size, kind) in enumerate(members, 1):
        total += size
        parts = [part for part in name.replace("\\", "/").split("/") if part]
        if count > MAX_MEMBERS:
            raise ModelError(f"preset {url!r} holds more than {MAX_MEMBERS:,} files")
        if total > min(limit, MAX_ARCHIVE_BYTES):
            raise ModelError(f"preset {url!r} unpacks to {total:,} bytes or more, over the "
                             f"{min(limit, MAX_ARCHIVE_BYTES):,} allowed for its size")
        if kind not in ("file", "folder"):
            raise ModelError(f"preset {url!r} holds a {kind}: {name!r}")
        if os.path.isabs(name) or ".." in parts:
            raise ModelError(f"preset {url!r} holds a file outside its directory: {name!r}")
        if len(parts) > MAX_MEMBER_DEPTH + 1:
            raise ModelError(f"preset {url!r} holds a path deeper than {MAX_MEMBER_DEPTH} "
                             f"directories: {name[:80]!r}…")
