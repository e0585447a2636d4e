"""Addresses in the lake: checked relative paths, the root a lake URL names, and atomic local
writes."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from marketlake.errors import ConfigError, TerminalError
from marketlake.lake.s3 import S3Location, parse_s3_url

if TYPE_CHECKING:
    import pyarrow.fs as pafs

_SEGMENT = re.compile(r"^[A-Za-z0-9_.=\-^%+]+$")
_TEMP_SUFFIX = ".tmp"


def validate_relpath(relpath: str, *, allow_root: bool = False) -> str:
    """Check a path relative to the lake root; return it without surrounding slashes.

    Allowed: segments of letters, digits and ``_ . = - ^ % +`` joined by ``/``. Rejected:
    absolute paths, ``..`` or ``.`` segments, empty segments, backslashes and other characters.
    """
    if not isinstance(relpath, str):
        raise TerminalError(f"lake path must be a string, got {type(relpath).__name__}")
    if relpath.startswith("/") or "\\" in relpath or "\x00" in relpath:
        raise TerminalError(f"invalid lake path {relpath!r}: must be relative, with '/' only")
    cleaned = relpath.strip("/") if relpath.endswith("/") else relpath
    if not cleaned:
        if allow_root:
            return ""
        raise TerminalError("invalid lake path '': a file path is required")
    for segment in cleaned.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise TerminalError(
                f"invalid lake path {relpath!r}: segment {segment!r} is not allowed (use "
                "letters, digits and _ . = - ^ % +; no empty, '.' or '..' segments)"
            )
    return cleaned


@dataclass(frozen=True)
class LakeRoot:
    """Where a lake URL points: its normalised URL, filesystem and base path (and S3 details)."""

    url: str
    filesystem: pafs.FileSystem
    base_path: str
    s3: S3Location | None = None


def resolve_root(url: str, options: Mapping[str, str] | None = None) -> LakeRoot:
    """The root of ``url``: ``file:///path``, a plain path, or ``s3://bucket/prefix``.

    ``options`` apply to s3:// URLs only (they override the AWS_* environment variables).
    """
    if not isinstance(url, str) or not url:
        raise ConfigError("lake URL is empty: use file:///path, a path, or s3://bucket/prefix")
    scheme = urlsplit(url).scheme.lower()
    if scheme == "s3":
        location = parse_s3_url(url, options)
        return LakeRoot(location.url, location.filesystem(), location.base_path, location)
    if options:
        raise ConfigError(f"lake options {sorted(options)} only apply to s3:// URLs, not {url}")
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"file URL {url!r} names host {parts.netloc!r}; use file:///path")
        root = Path(_url_path(parts.path))
    elif len(scheme) <= 1:  # a plain path (or a Windows drive letter)
        root = Path(url)
    else:
        raise ConfigError(
            f"unsupported lake URL {url!r}: use file:///path, a plain path, or s3://bucket/prefix"
        )
    import pyarrow.fs as pafs

    root = root.expanduser().resolve()
    return LakeRoot(root.as_uri(), pafs.LocalFileSystem(), str(root))


def _url_path(path: str) -> str:
    """The local path of a ``file:`` URL's (percent-encoded) path, decoded once.

    ``urllib.request`` is imported only on Windows, where drive letters need it: it pulls in
    ``http.client`` and ``email`` (about 20 ms of every command's start-up).
    """
    if os.name == "nt":
        from urllib.request import url2pathname

        return url2pathname(path)
    return unquote(path)


def is_temp_name(name: str) -> bool:
    """True for the hidden temp files :func:`write_local_atomic` writes before renaming."""
    return name.startswith(".") and name.endswith(_TEMP_SUFFIX)


def write_local_atomic(target: Path, data: bytes) -> None:
    """Write to a hidden temp file beside ``target``, fsync it, then rename over ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}{_TEMP_SUFFIX}")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
