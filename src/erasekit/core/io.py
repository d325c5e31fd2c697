"""Output files: atomic single writes, and staged multi-file outputs that appear all at once or not at all.

A command that writes several files (a report, a model and its sidecar, an eraser …) fills a
staging folder beside its destination, fsyncs it, then moves the files into place. A failure
before that leaves the destination untouched and removes the staging folder; a staging folder
left by a killed run is removed by the next run that writes to the same place.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from erasekit.core.errors import OutputError, StorageFault

STAGING_MARK = ".erasekit-staging-"


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not support fsync on directories
    finally:
        os.close(fd)


# errors of the environment rather than of the input: they go away once space is freed or
# permissions are fixed, so work that meets them is left to be resumed, never marked failed
TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EFBIG})


def _cannot_write(path: Path, exc: OSError) -> OutputError:
    return StorageFault(f"cannot write {path}: {exc.strerror or exc}; free some space or choose a writable location", exc.errno)


def storage_fault(exc: BaseException) -> StorageFault | None:
    """``exc`` as a :class:`StorageFault` if it is one (disk full, read-only, permission denied), else None."""
    if isinstance(exc, StorageFault):
        return exc
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        where = f" ({exc.filename})" if exc.filename else ""
        return StorageFault(f"{exc.strerror or exc}{where}", exc.errno)
    return None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory, fsync, then rename."""
    path = Path(path)
    try:
        new_folder = not path.parent.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
        fsync_dir(path.parent)
        if new_folder:
            fsync_dir(path.parent.parent)  # the new folder's own entry
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _cannot_write(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def check_writable_dir(directory: Path, option: str = "--out") -> None:
    """Fail early (before any heavy work) if ``directory`` could not be created or written."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{option} {directory} exists and is not a directory; pick another path")
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to {directory}: {probe} is not writable; choose a writable {option}")


def check_writable_file(path: Path, option: str = "--out") -> None:
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a directory; give a file path")
    check_writable_dir(path.parent, option)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(parent: Path, name: str) -> list[Path]:
    """Remove staging folders for ``parent/name`` whose writing process no longer runs; returns them."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for candidate in parent.glob(f".{name}{STAGING_MARK}*"):
        pid_text = candidate.name.rsplit(STAGING_MARK, 1)[-1].split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and _pid_alive(int(pid_text)):
            continue  # another run is writing right now
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed


def new_staging(parent: Path, name: str, target: Path) -> Path:
    """A fresh staging folder for ``parent/name`` (stale ones from killed runs removed first)."""
    remove_stale_staging(parent, name)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{name}{STAGING_MARK}{os.getpid()}.", dir=parent))
    except OSError as exc:
        raise _cannot_write(target, exc) from None


@contextmanager
def staged_files(directory: Path) -> Iterator[Path]:
    """Yield a staging folder; on a clean exit move every file in it into ``directory``.

    ``directory`` is created if missing (as a whole, by renaming the staging folder). Files
    already in an existing ``directory`` that the command does not write are left alone.
    """
    directory = Path(directory)
    parent = directory.parent
    staging = new_staging(parent, directory.name, directory)
    try:
        yield staging
        for item in staging.iterdir():
            _fsync_file(item)
        fsync_dir(staging)
        if not directory.exists():
            os.chmod(staging, 0o777 & ~_umask())
            os.rename(staging, directory)
        else:
            for item in sorted(staging.iterdir()):
                os.replace(item, directory / item.name)
            staging.rmdir()
        fsync_dir(directory)
        fsync_dir(parent)
    except OSError as exc:
        raise _cannot_write(directory, exc) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _fsync_file(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def write_files(directory: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Write every ``name → bytes`` into ``directory`` all at once (see :func:`staged_files`)."""
    directory = Path(directory)
    with staged_files(directory) as staging:
        for name, payload in files.items():
            try:
                (staging / name).parent.mkdir(parents=True, exist_ok=True)  # "folder/file" names make sub-folders
                (staging / name).write_bytes(payload)
            except OSError as exc:
                raise _cannot_write(directory / name, exc) from None
    return [directory / name for name in files]


def write_sibling_files(files: Mapping[Path, bytes]) -> None:
    """Write files that share one parent folder (a model and its sidecar) so that all or none appear."""
    paths = [Path(p) for p in files]
    parents = {p.parent for p in paths}
    if len(parents) != 1:
        raise OutputError("files written together must share one folder")
    parent = parents.pop()
    first = paths[0]
    staging = new_staging(parent, first.name, first)
    try:
        for path, payload in files.items():
            staged = staging / Path(path).name
            staged.write_bytes(payload)
            _fsync_file(staged)
            os.chmod(staged, 0o666 & ~_umask())
        for path in paths:
            os.replace(staging / path.name, path)
        fsync_dir(parent)
    except OSError as exc:
        raise _cannot_write(first, exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
