"""Plugin packages: the reproducible ``.tar.gz`` that ``build`` writes and installs unpack.

A package is ``<id>-<version>.tar.gz`` holding one top folder
``<id>-<version>/`` with the plugin's files, and a ``.sha256`` file beside it
in ``sha256sum`` format (``<hex>  <filename>``).

Building is reproducible: the same files give the same bytes. Entries are
sorted, every time stamp is ``SOURCE_DATE_EPOCH`` (0 when unset), owners are
0 with empty names, modes are 0644 (0755 for directories and executables) and
the gzip header carries neither a time nor a file name.

What a package leaves out: version control folders, ``__pycache__`` and tool
caches, virtual environments (``.venv``, ``venv``, any folder holding a
``pyvenv.cfg``), ``dist/`` and ``.ops-center/`` at the top, compiled
``*.pyc`` files, and whatever ``.opsignore`` (gitignore syntax) names.

Links: a link to a file or folder inside the plugin folder is stored as the
content it points to (packages never hold links, so an installer can refuse
every link); a link that points outside the folder, or a broken one, stops
the build.

Unpacking (:func:`extract_package`) trusts nothing: it checks the checksum,
refuses absolute paths, ``..``, names that are not UTF-8, links of any kind,
devices, more than one top folder and archives over :class:`PackageLimits`
(compressed and unpacked, so a small archive cannot expand into a huge one),
and it writes into a
temporary folder renamed into place only when everything passed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, BinaryIO

from .errors import ManifestError, OpsCenterError

if TYPE_CHECKING:
    import pathspec

    from .manifest import Manifest

PACKAGE_SUFFIX = ".tar.gz"
CHECKSUM_SUFFIX = ".sha256"
IGNORE_FILE = ".opsignore"
MANIFEST_FILE = "plugin.yaml"
SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"

#: Folders left out at any depth.
EXCLUDED_DIRS: frozenset[str] = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".venv",
        "venv",
        ".ipynb_checkpoints",
    }
)
#: Folders left out at the top of the plugin folder only.
EXCLUDED_TOP_DIRS: frozenset[str] = frozenset({"dist", ".ops-center"})
#: File name suffixes left out everywhere.
EXCLUDED_SUFFIXES: tuple[str, ...] = (".pyc", ".pyo")
EXCLUDED_FILES: frozenset[str] = frozenset({".DS_Store"})

_FILE_MODE = 0o644
_EXEC_MODE = 0o755
_DIR_MODE = 0o755
_CHUNK = 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_MAX_MANIFEST_BYTES = 1024 * 1024


class PackageError(OpsCenterError):
    """A folder that cannot be packaged, or a package that is refused."""


class ChecksumMismatch(PackageError):
    """The package's SHA-256 is not the one it was published or shipped with."""


@dataclass(frozen=True)
class PackageLimits:
    """How big a package may be: compressed, unpacked, and in entries."""

    max_compressed_bytes: int = 50 * 1024 * 1024
    max_unpacked_bytes: int = 200 * 1024 * 1024
    max_entries: int = 10_000


@dataclass(frozen=True)
class PackageFile:
    """One file of a plugin folder as it goes into a package."""

    path: str
    """Where it goes, relative to the top folder, with ``/``."""
    source: Path
    """The file whose content is stored (a link's target for a link)."""
    size: int
    mode: int


@dataclass(frozen=True)
class BuiltPackage:
    """What :func:`build_package` wrote."""

    path: Path
    checksum_path: Path
    sha256: str
    size: int
    files: tuple[PackageFile, ...]

    @property
    def unpacked_size(self) -> int:
        """The files' total size."""
        return sum(item.size for item in self.files)


@dataclass(frozen=True)
class PackageContents:
    """What a checked package holds."""

    top: str
    manifest: Manifest
    files: tuple[tuple[str, int], ...]
    """``(path relative to the top folder, size)`` of each file, in archive order."""
    sha256: str
    size: int
    unpacked_size: int


def package_stem(plugin_id: str, version: str) -> str:
    """``my-plugin-1.0.0``: the top folder and the file name without ``.tar.gz``."""
    return f"{plugin_id}-{version}"


# ==================== checksums ====================


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file, as lowercase hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_line(sha256: str, filename: str) -> str:
    """A ``sha256sum`` line: ``<hex>  <filename>`` and a newline."""
    return f"{sha256}  {filename}\n"


def read_checksum_file(path: str | Path, filename: str | None = None) -> str:
    """The hex digest in a ``sha256sum`` file (for ``filename`` when it lists several)."""
    text = Path(path).read_text(encoding="utf-8")
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if not parts or not _HEX64.match(parts[0]):
            continue
        named = parts[1].lstrip("*") if len(parts) > 1 else None
        if filename is None or named in (None, filename):
            return parts[0].lower()
    wanted = f" for {filename}" if filename else ""
    raise PackageError(f"{path}: no SHA-256 checksum{wanted} (expected '<hex>  <filename>')")


def check_sha256_text(value: str) -> str:
    """``value`` as a lowercase hex SHA-256; ValueError when it is not one."""
    value = value.strip()
    if not _HEX64.match(value):
        raise ValueError(f"{value[:80]!r} is not a SHA-256 checksum (64 hexadecimal digits)")
    return value.lower()


def verify_checksum(path: str | Path, expected: str) -> str:
    """Raise :class:`ChecksumMismatch` unless the file's SHA-256 is ``expected``."""
    wanted = check_sha256_text(expected)
    actual = sha256_of(path)
    if actual != wanted:
        raise ChecksumMismatch(
            f"checksum mismatch for {Path(path).name}: expected {wanted}, the file has {actual}; "
            "the package was changed or damaged after it was built"
        )
    return actual


# ==================== collecting a folder's files ====================


def load_ignore_spec(folder: Path) -> pathspec.GitIgnoreSpec | None:
    """The patterns of ``.opsignore`` in ``folder`` (gitignore syntax), if it exists.

    Raises :class:`PackageError` for a file that is not UTF-8 text, and for a
    line that is not a gitignore pattern, naming the line (``.opsignore:3:``).
    """
    ignore_file = folder / IGNORE_FILE
    if not ignore_file.is_file():
        return None
    import pathspec

    try:
        lines = ignore_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise PackageError(
            f"{IGNORE_FILE} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None
    except OSError as exc:
        raise PackageError(f"{IGNORE_FILE} cannot be read: {exc.strerror or exc}") from None
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except (ValueError, re.error):
        pass
    # Compile line by line to name the first bad one (only when there is one).
    for number, line in enumerate(lines, start=1):
        try:
            pathspec.GitIgnoreSpec.from_lines([line])
        except (ValueError, re.error) as exc:
            raise PackageError(
                f"{IGNORE_FILE}:{number}: {line!r} is not a gitignore pattern ({exc}); "
                "correct or remove the line (a literal '!', '#' or '\\' is written '\\!', "
                "'\\#', '\\\\')"
            ) from None
    raise PackageError(f"{IGNORE_FILE} is not a list of gitignore patterns")


def collect_files(folder: str | Path, *, exclude: Iterable[Path] = ()) -> list[PackageFile]:
    """The files of ``folder`` that go into its package, sorted by path.

    ``exclude`` names more folders to leave out (the build's output folder).
    Raises :class:`PackageError` for a link pointing outside the folder, a
    broken link, a link loop, or something that is not a file or folder.
    """
    root = Path(folder).resolve()
    ignore = load_ignore_spec(root)
    skipped = {path.resolve() for path in exclude}
    files: list[PackageFile] = []
    _walk(root, root, PurePosixPath(), ignore, skipped, frozenset({root}), files)
    files.sort(key=lambda item: PurePosixPath(item.path).parts)
    return files


def _walk(
    root: Path,
    directory: Path,
    relative: PurePosixPath,
    ignore: pathspec.GitIgnoreSpec | None,
    skipped: set[Path],
    ancestors: frozenset[Path],
    files: list[PackageFile],
) -> None:
    with os.scandir(directory) as scan:
        children = sorted(scan, key=lambda entry: entry.name)
    for child in children:
        path = relative / child.name
        shown = path.as_posix()
        if child.is_symlink():
            target = Path(os.path.realpath(child.path))
            if not target.is_relative_to(root):
                raise PackageError(
                    f"{shown} is a link to {target}, outside the plugin folder: copy the file "
                    "into the folder, or remove the link or list it in .opsignore"
                )
            if not target.exists():
                raise PackageError(f"{shown} is a broken link (to {target}): fix or remove it")
            is_dir = target.is_dir()
        else:
            target = Path(child.path)
            is_dir = child.is_dir(follow_symlinks=False)
        if _excluded(child.name, path, is_dir, target, ignore) or target in skipped:
            continue
        if not _is_utf8(shown):
            raise PackageError(
                f"{shown!r} has a name that is not UTF-8 (the escapes are raw bytes), which "
                "a package cannot hold: rename it or list it in .opsignore"
            )
        if is_dir:
            if target in ancestors:
                raise PackageError(f"{shown} is a link to a folder that contains it (a loop)")
            _walk(root, target, path, ignore, skipped, ancestors | {target}, files)
            continue
        info = target.stat()
        if not stat.S_ISREG(info.st_mode):
            raise PackageError(
                f"{shown} is not a regular file (a socket, pipe or device): remove it or "
                "list it in .opsignore"
            )
        mode = _EXEC_MODE if info.st_mode & 0o111 else _FILE_MODE
        files.append(PackageFile(shown, target, info.st_size, mode))


def _excluded(
    name: str,
    path: PurePosixPath,
    is_dir: bool,
    target: Path,
    ignore: pathspec.GitIgnoreSpec | None,
) -> bool:
    if is_dir:
        if name in EXCLUDED_DIRS or (len(path.parts) == 1 and name in EXCLUDED_TOP_DIRS):
            return True
        if (target / "pyvenv.cfg").is_file():
            return True
    elif name in EXCLUDED_FILES or name.endswith(EXCLUDED_SUFFIXES):
        return True
    if ignore is None:
        return False
    text = path.as_posix() + ("/" if is_dir else "")
    return bool(ignore.match_file(text))


# ==================== building ====================


def build_mtime() -> int:
    """The time stamp every entry gets: ``SOURCE_DATE_EPOCH`` when set, else 0."""
    value = os.environ.get(SOURCE_DATE_EPOCH, "").strip()
    if not value:
        return 0
    try:
        stamp = int(value)
    except ValueError:
        raise PackageError(
            f"{SOURCE_DATE_EPOCH}={value!r} is not a whole number of seconds"
        ) from None
    if stamp < 0:
        raise PackageError(f"{SOURCE_DATE_EPOCH}={value!r} must not be negative")
    return stamp


def build_package(
    folder: str | Path,
    output_dir: str | Path | None = None,
    *,
    manifest: Manifest | None = None,
    mtime: int | None = None,
) -> BuiltPackage:
    """Write ``<output_dir>/<id>-<version>.tar.gz`` and its ``.sha256`` file.

    >>> built = build_package("my-plugin")          # doctest: +SKIP
    >>> built.path.name
    'my-plugin-1.0.0.tar.gz'

    ``output_dir`` defaults to ``<folder>/dist``. Both files are written to
    temporary names and renamed into place, so a failed build leaves nothing
    half-written. It does not validate the plugin; ``ops-center-plugin
    build`` validates first.
    """
    from .manifest import load_manifest

    root = Path(folder).resolve()
    manifest = manifest or load_manifest(root)
    output = Path(output_dir).resolve() if output_dir is not None else root / "dist"
    stamp = build_mtime() if mtime is None else mtime
    files = collect_files(root, exclude=[output])
    present = {item.path for item in files}
    for required in (MANIFEST_FILE, manifest.runtime.entrypoint):
        if required not in present:
            raise PackageError(
                f"{required} would not be in the package: it is missing, or .opsignore "
                "leaves it out"
            )
    stem = package_stem(manifest.id, manifest.version)
    name = stem + PACKAGE_SUFFIX
    output.mkdir(parents=True, exist_ok=True)
    archive = _temporary(output, name)
    checksum_file = _temporary(output, name + CHECKSUM_SUFFIX)
    try:
        with open(archive, "wb") as raw:
            write_archive(files, stem, raw, mtime=stamp)
            raw.flush()
            os.fsync(raw.fileno())
        digest = sha256_of(archive)
        checksum_file.write_text(checksum_line(digest, name), encoding="utf-8")
        for path in (archive, checksum_file):
            os.chmod(path, _FILE_MODE)
        target = output / name
        os.replace(archive, target)
        try:
            os.replace(checksum_file, output / (name + CHECKSUM_SUFFIX))
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    finally:
        archive.unlink(missing_ok=True)
        checksum_file.unlink(missing_ok=True)
    return BuiltPackage(
        path=target,
        checksum_path=output / (name + CHECKSUM_SUFFIX),
        sha256=digest,
        size=target.stat().st_size,
        files=tuple(files),
    )


def _temporary(directory: Path, name: str) -> Path:
    handle, path = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".partial")
    os.close(handle)
    return Path(path)


def write_archive(files: Iterable[PackageFile], top: str, out: BinaryIO, *, mtime: int = 0) -> None:
    """Write the reproducible ``.tar.gz`` of ``files`` under ``top/`` to ``out``."""
    items = list(files)
    folders = {PurePosixPath(top)}
    for listed in items:
        folders.update(PurePosixPath(top, listed.path).parents)
    folders.discard(PurePosixPath("."))
    entries: list[tuple[tuple[str, ...], PackageFile | None]] = [
        (folder.parts, None) for folder in folders
    ]
    entries += [(PurePosixPath(top, listed.path).parts, listed) for listed in items]
    entries.sort(key=lambda entry: entry[0])
    # filename="" keeps the name out of the gzip header; mtime=0 keeps the time out.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for parts, item in entries:
            info = tarfile.TarInfo("/".join(parts))
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if item is None:
                info.type = tarfile.DIRTYPE
                info.mode = _DIR_MODE
                tar.addfile(info)
                continue
            info.mode = item.mode
            with open(item.source, "rb") as handle:
                info.size = os.fstat(handle.fileno()).st_size
                tar.addfile(info, handle)


# ==================== checking and unpacking ====================


class _BoundedReader(io.RawIOBase):
    """The decompressed stream, refusing to yield more than ``limit`` bytes.

    Counting the bytes the tar reader pulls covers every way an archive can
    expand: file data, headers, long-name and pax records.
    """

    def __init__(self, stream: gzip.GzipFile, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        self.count += len(data)
        if self.count > self._limit:
            raise PackageError(f"the package unpacks to more than the limit of {self._limit} bytes")
        buffer[: len(data)] = data
        return len(data)


def check_package(
    path: str | Path,
    *,
    expected_sha256: str | None = None,
    limits: PackageLimits | None = None,
) -> PackageContents:
    """Check a package without unpacking it; raise :class:`PackageError` when it is refused."""
    return _read_package(Path(path), None, expected_sha256, limits or PackageLimits())


def extract_package(
    path: str | Path,
    destination: str | Path,
    *,
    expected_sha256: str | None = None,
    limits: PackageLimits | None = None,
) -> PackageContents:
    """Check a package and unpack its top folder's content as ``destination``.

    ``destination`` must not exist yet. Everything is written into a
    temporary folder beside it and renamed to ``destination`` only when the
    whole package passed, so a refused package leaves nothing behind.
    """
    target = Path(destination)
    if target.exists():
        raise PackageError(f"{target} already exists; remove it first")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    )
    try:
        contents = _read_package(Path(path), staging, expected_sha256, limits or PackageLimits())
        os.rename(staging / contents.top, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return contents


def _read_package(
    path: Path, staging: Path | None, expected_sha256: str | None, limits: PackageLimits
) -> PackageContents:
    size = path.stat().st_size
    if size > limits.max_compressed_bytes:
        raise PackageError(
            f"the package is {size} bytes, more than the limit of {limits.max_compressed_bytes}"
        )
    if expected_sha256 is not None:
        digest = verify_checksum(path, expected_sha256)
    else:
        digest = sha256_of(path)
    # Headers and padding add to the file data; allow for them on top of the limit.
    stream_limit = limits.max_unpacked_bytes + 1024 * (limits.max_entries + 16)
    top: str | None = None
    seen: set[str] = set()
    # What each path is (True: a folder), explicit or implied by a deeper entry.
    kinds: dict[str, bool] = {}
    files: list[tuple[str, int]] = []
    manifest_text: bytes | None = None
    unpacked = 0
    try:
        with gzip.open(path, "rb") as zipped:
            bounded = io.BufferedReader(_BoundedReader(zipped, stream_limit), _CHUNK)
            with tarfile.open(fileobj=bounded, mode="r|") as tar:
                for member in tar:
                    if len(seen) >= limits.max_entries:
                        raise PackageError(
                            f"the package has more than {limits.max_entries} entries"
                        )
                    parts = _member_parts(member)
                    name = "/".join(parts)
                    if name in seen:
                        raise PackageError(f"{member.name!r} appears twice in the package")
                    seen.add(name)
                    _check_kind(name, parts, member.isdir(), kinds)
                    if len(parts) == 1 and not member.isdir():
                        raise PackageError(
                            f"{member.name!r} is a file at the top of the package; files "
                            "belong inside the one top folder <id>-<version>/"
                        )
                    if top is None:
                        top = parts[0]
                    elif parts[0] != top:
                        raise PackageError(
                            f"the package has more than one top folder ({top!r} and "
                            f"{parts[0]!r}); a package holds exactly one, <id>-<version>/"
                        )
                    if member.isdir():
                        if staging is not None:
                            (staging / name).mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
                        continue
                    unpacked += member.size
                    if unpacked > limits.max_unpacked_bytes:
                        raise PackageError(
                            "the package unpacks to more than the limit of "
                            f"{limits.max_unpacked_bytes} bytes"
                        )
                    relative = "/".join(parts[1:])
                    files.append((relative, member.size))
                    data = tar.extractfile(member)
                    assert data is not None  # regular files always have data
                    if relative == MANIFEST_FILE:
                        manifest_text = data.read(_MAX_MANIFEST_BYTES + 1)
                        if staging is not None:
                            _write_member(staging / name, io.BytesIO(manifest_text), member)
                    elif staging is not None:
                        _write_member(staging / name, data, member)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise PackageError(f"not a readable .tar.gz package: {exc}") from None
    except OSError as exc:
        raise PackageError(f"cannot unpack the package: {exc}") from None
    if top is None:
        raise PackageError("the package is empty")
    manifest = _package_manifest(manifest_text, top)
    return PackageContents(top, manifest, tuple(files), digest, size, unpacked)


def _check_kind(name: str, parts: tuple[str, ...], is_dir: bool, kinds: dict[str, bool]) -> None:
    for end in range(1, len(parts)):
        prefix = "/".join(parts[:end])
        if kinds.setdefault(prefix, True) is False:
            raise PackageError(f"{name!r} is inside {prefix!r}, which the package has as a file")
    if kinds.setdefault(name, is_dir) != is_dir:
        raise PackageError(f"{name!r} is both a file and a folder in the package")


def _member_parts(member: tarfile.TarInfo) -> tuple[str, ...]:
    name = member.name
    if member.issym() or member.islnk():
        raise PackageError(
            f"{name!r} is a link (to {member.linkname!r}); packages may not hold links"
        )
    if member.issparse() or not (member.isfile() or member.isdir()):
        raise PackageError(f"{name!r} is not a regular file or folder (a device, pipe or similar)")
    if "\x00" in name or "\\" in name:
        raise PackageError(f"{name!r} is not a safe path: it holds a NUL or a backslash")
    if not _is_utf8(name):
        raise PackageError(
            f"{name!r} is not a UTF-8 name (the escapes are raw bytes); package paths are UTF-8"
        )
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise PackageError(f"{name!r} is an absolute path; paths must be relative to the package")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise PackageError(f"{name!r} climbs out of the package with '..'")
    if not parts:
        raise PackageError(f"{name!r} is not a usable path")
    return parts


def _is_utf8(name: str) -> bool:
    """False for a name read with ``surrogateescape`` from bytes that are not UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _write_member(target: Path, data: IO[bytes], member: tarfile.TarInfo) -> None:
    target.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    mode = _EXEC_MODE if member.mode & 0o111 else _FILE_MODE
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(target, flags, mode), "wb") as out:
        shutil.copyfileobj(data, out, _CHUNK)


def _package_manifest(text: bytes | None, top: str) -> Manifest:
    from .manifest import parse_manifest

    if text is None:
        raise PackageError(f"the package has no {top}/{MANIFEST_FILE}")
    if len(text) > _MAX_MANIFEST_BYTES:
        raise PackageError(f"{top}/{MANIFEST_FILE} is larger than {_MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = parse_manifest(text.decode("utf-8"), source=f"{top}/{MANIFEST_FILE}")
    except UnicodeDecodeError:
        raise PackageError(f"{top}/{MANIFEST_FILE} is not UTF-8 text") from None
    except ManifestError as exc:
        raise PackageError(f"the package's manifest is not valid: {exc}") from None
    expected = package_stem(manifest.id, manifest.version)
    if top != expected:
        raise PackageError(
            f"the top folder is {top!r} but plugin.yaml says {manifest.id} {manifest.version}: "
            f"it must be {expected!r}"
        )
    return manifest


def iter_chunks(path: str | Path, size: int = 64 * 1024) -> Iterator[bytes]:
    """The bytes of a file, ``size`` at a time (for streaming uploads and downloads)."""
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk
