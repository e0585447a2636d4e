"""Where the lake lives: one root URL on local disk or S3, addressed by relative paths.

``LakeStorage.from_url`` picks the filesystem from the URL scheme (``file://`` or a plain path:
local disk; ``s3://bucket/prefix``: S3 or any S3-compatible store; see
:mod:`marketlake.lake.paths`). The rest of marketlake reads and writes through this class and
the Delta tables built on it, never knowing which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from marketlake.errors import TerminalError, TransientError
from marketlake.lake.exceptions import translate_error
from marketlake.lake.paths import (
    is_temp_name,
    resolve_root,
    validate_relpath,
    write_local_atomic,
)
from marketlake.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from marketlake.lake.s3 import S3Location

T = TypeVar("T")


class LakeStorage:
    """Byte-level access to the lake root, on local disk or S3."""

    def __init__(
        self,
        url: str,
        filesystem: pafs.FileSystem,
        base_path: str,
        *,
        s3: S3Location | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url
        self.filesystem = filesystem
        self.base_path = base_path
        self.retry = retry or RetryPolicy()
        self._s3 = s3

    @classmethod
    def from_url(
        cls,
        url: str,
        options: Mapping[str, str] | None = None,
        *,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
    ) -> LakeStorage:
        """Open the lake at ``url``: ``file:///path``, a plain path, or ``s3://bucket/prefix``.

        ``options`` (S3 only) override the AWS_* environment variables: AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL, AWS_REGION, AWS_ALLOW_HTTP.
        Operations failing with a TransientError are tried up to ``max_attempts`` times.
        """
        retry = RetryPolicy(max_attempts=max_attempts, backoff_s=backoff_s)
        root = resolve_root(url, options)
        return cls(root.url, root.filesystem, root.base_path, s3=root.s3, retry=retry)

    # -- addressing ---------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        """True for a lake on local disk."""
        return self._s3 is None

    def describe(self) -> str:
        """The root URL and, for S3, the endpoint (for messages; never a secret)."""
        return self._s3.describe() if self._s3 else self.url

    def path(self, relpath: str) -> str:
        """The filesystem path of ``relpath`` (as ``self.filesystem`` addresses it)."""
        cleaned = validate_relpath(relpath, allow_root=True)
        return f"{self.base_path}/{cleaned}" if cleaned else self.base_path

    def uri(self, relpath: str) -> str:
        """The full URL of ``relpath`` (``file:///...`` or ``s3://...``), as deltalake takes it."""
        cleaned = validate_relpath(relpath, allow_root=True)
        if self._s3 is None:
            return Path(self.path(cleaned)).as_uri()
        return f"{self.url}/{cleaned}" if cleaned else self.url

    def storage_options(self) -> dict[str, str]:
        """Options for deltalake: ``{}`` on local disk; endpoint, keys and commit mode on S3."""
        return self._s3.storage_options() if self._s3 else {}

    def subtree(self, relpath: str) -> pafs.FileSystem:
        """A filesystem rooted at ``relpath`` (paths inside it are relative to that folder)."""
        import pyarrow.fs as pafs

        return pafs.SubTreeFileSystem(self.path(relpath), self.filesystem)

    # -- error handling -----------------------------------------------------------------------

    def run(self, action: str, operation: Callable[[], T]) -> T:
        """Run ``operation`` with driver errors translated and transient failures retried."""

        def attempt() -> T:
            try:
                return operation()
            except Exception as exc:
                error = translate_error(
                    exc,
                    action=action,
                    where=self.describe(),
                    secrets=self._s3.secrets() if self._s3 else (),
                )
                if error is exc:
                    raise
                raise error from exc

        return call_with_retry(self.retry, attempt)

    def check(self) -> None:
        """Verify the root is reachable and (on S3) the bucket exists and the keys are accepted."""
        import pyarrow.fs as pafs

        def probe() -> None:
            if self._s3 is None:
                Path(self.base_path).mkdir(parents=True, exist_ok=True)
                return
            info = self.filesystem.get_file_info(self._s3.bucket)
            if info.type == pafs.FileType.NotFound:
                raise TerminalError(
                    f"checking {self.describe()} failed: bucket {self._s3.bucket!r} does not exist"
                )
            self.filesystem.get_file_info(pafs.FileSelector(self.base_path, allow_not_found=True))

        self.run("checking the lake", probe)

    # -- bytes --------------------------------------------------------------------------------

    def write_bytes(self, relpath: str, data: bytes) -> None:
        """Write ``data`` to ``relpath``, replacing it atomically (temp file + rename locally)."""
        target = self.path(validate_relpath(relpath))
        if self._s3 is None:
            self.run(f"writing {relpath}", lambda: write_local_atomic(Path(target), data))
            return

        def put() -> None:
            with self.filesystem.open_output_stream(target, compression=None) as stream:
                stream.write(data)

        self.run(f"writing {relpath}", put)

    def read_bytes(self, relpath: str) -> bytes:
        """The bytes stored at ``relpath``; LakeNotFoundError if there are none."""
        target = self.path(validate_relpath(relpath))

        def get() -> bytes:
            try:
                if self._s3 is None:
                    with self.filesystem.open_input_stream(target, compression=None) as stream:
                        return bytes(stream.read())
                return self._read_whole_object(target)
            except FileNotFoundError:
                self._raise_if_bucket_missing()
                raise

        return self.run(f"reading {relpath}", get)

    def exists(self, relpath: str) -> bool:
        """True when ``relpath`` is a file or a non-empty folder."""
        import pyarrow.fs as pafs

        target = self.path(validate_relpath(relpath))
        info = self.run(f"looking up {relpath}", lambda: self.filesystem.get_file_info(target))
        return bool(info.type != pafs.FileType.NotFound)

    def list_files(self, prefix: str = "") -> list[str]:
        """Relative paths of every file under ``prefix`` (recursive, sorted)."""
        import pyarrow.fs as pafs

        cleaned = validate_relpath(prefix, allow_root=True)
        root = self.path(cleaned)
        selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)

        def listing() -> list[pafs.FileInfo]:
            try:
                return list(self.filesystem.get_file_info(selector))
            except NotADirectoryError:
                return [self.filesystem.get_file_info(root)]

        start = len(self.base_path) + 1
        return sorted(
            info.path[start:]
            for info in self.run(f"listing {prefix or 'the lake'}", listing)
            if info.type == pafs.FileType.File and not is_temp_name(info.base_name)
        )

    def list_dirs(self, prefix: str = "") -> list[str]:
        """Names of the folders directly under ``prefix`` (sorted)."""
        import pyarrow.fs as pafs

        root = self.path(validate_relpath(prefix, allow_root=True))
        selector = pafs.FileSelector(root, recursive=False, allow_not_found=True)
        infos = self.run(
            f"listing {prefix or 'the lake'}", lambda: self.filesystem.get_file_info(selector)
        )
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def delete(self, relpath: str) -> None:
        """Delete the file or folder at ``relpath``; nothing happens if it does not exist."""
        import pyarrow.fs as pafs

        target = self.path(validate_relpath(relpath))

        def remove() -> None:
            info = self.filesystem.get_file_info(target)
            if info.type == pafs.FileType.File:
                self.filesystem.delete_file(target)
            elif info.type == pafs.FileType.Directory:
                self.filesystem.delete_dir(target)

        self.run(f"deleting {relpath}", remove)

    def _read_whole_object(self, target: str, attempts: int = 5) -> bytes:
        """Read one S3 object, never a mix of two versions.

        pyarrow asks for the size first and then reads that byte range; an overwrite in
        between would give part of the new object. The size is checked again after the read
        and the read repeated when the object changed meanwhile.
        """
        for _ in range(attempts):
            before = self.filesystem.get_file_info(target)
            with self.filesystem.open_input_stream(target, compression=None) as stream:
                data = bytes(stream.read())
            after = self.filesystem.get_file_info(target)
            if len(data) == before.size == after.size and before.mtime == after.mtime:
                return data
        raise TransientError(f"{target} kept changing while it was read at {self.describe()}")

    def _raise_if_bucket_missing(self) -> None:
        import pyarrow.fs as pafs

        if self._s3 is None:
            return
        if self.filesystem.get_file_info(self._s3.bucket).type == pafs.FileType.NotFound:
            raise TerminalError(
                f"bucket {self._s3.bucket!r} does not exist at {self.describe()}; create it first"
            )

    def __repr__(self) -> str:
        return f"LakeStorage({self.describe()!r})"
