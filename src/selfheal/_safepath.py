"""Directories and files no other user can subvert: checked like OpenSSH's StrictModes.

A daemon running as root that writes its token, lock and logs into a directory another user
can write would follow that user's symlinks (and overwrite, append to or chmod their targets);
a CLI that trusts a ``control.json`` another user wrote would send its token where told. So:

- `safe_dir` makes a directory with a safe mode, or checks the one that is there: it and
  every directory and symlink on its path belong to root or to us, and none of them can be
  written by anyone else (a directory on the path may be, with the sticky bit, as ``/tmp``).
- `open_private` opens a file in such a directory without following a symlink, and only if
  it belongs to root or to us; `bind_private` binds a unix socket there, mode 0600.

Whoever the check fails for gets `UnsafePathError`, which names the path, its owner and mode,
and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import socket
import stat
from pathlib import Path

from selfheal.errors import UnsafePathError

__all__ = [
    "UnsafePathError",
    "bind_private",
    "check_dir",
    "check_file",
    "open_private",
    "safe_dir",
    "trusted",
]


def trusted(uid: int) -> bool:
    """Return whether `uid` is root or this process's effective user."""
    return uid in (0, os.geteuid())


def _who(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _problem(path: Path, st: os.stat_result, *, sticky_ok: bool) -> str | None:
    """Return why `path` (whose lstat is `st`) lets another user change what is under it."""
    if not trusted(st.st_uid):
        me = os.geteuid()
        owners = "root" if me == 0 else f"{_who(me)} or root"
        return f"{path} belongs to {_who(st.st_uid)}, not to {owners}"
    if stat.S_ISLNK(st.st_mode):
        return None
    writers = [w for bit, w in ((0o020, "its group"), (0o002, "other users")) if st.st_mode & bit]
    if writers and not (sticky_ok and st.st_mode & stat.S_ISVTX):
        mode = stat.S_IMODE(st.st_mode)
        return f"{path} can be written by {' and '.join(writers)} (mode {mode:04o})"
    return None


def _check_path(path: Path) -> None:
    """Check every directory and symlink from ``/`` to `path` (lexically, then resolved)."""
    for chain in (path, Path(os.path.realpath(path))):
        parts = chain.parts
        for i in range(1, len(parts) + 1):
            prefix = Path(*parts[:i])
            try:
                st = os.lstat(prefix)
            except FileNotFoundError:
                break  # made by us from here on
            problem = _problem(prefix, st, sticky_ok=True)
            if problem is not None:
                raise UnsafePathError(
                    f"{problem}: another user could replace what is under it; use a path "
                    "that only root or this user can change"
                )


def safe_dir(path: str | os.PathLike[str], mode: int = 0o700) -> Path:
    """Make directory `path` (mode `mode`, parents 0755) or check the one there.

    Args:
        path: The directory (relative to the working directory if not absolute).
        mode: Its mode when made here.

    Returns:
        The directory, absolute.

    Raises:
        UnsafePathError: If another user owns it (or a directory or symlink on its way), or
            could write into it, or it is not a directory.
    """
    where = Path(os.path.abspath(path))
    _check_path(where.parent)
    if not os.path.lexists(where):
        # Made writable by nobody else whatever the umask: the next start checks them too.
        old = os.umask(0o022)
        os.umask(old | 0o022)
        try:
            os.makedirs(where.parent, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(where, mode)
        finally:
            os.umask(old)
    check_dir(where)
    return where


def check_dir(path: str | os.PathLike[str]) -> None:
    """Check that directory `path` and its way from ``/`` are only root's or ours to change.

    A symlink on the way (the directory itself too) counts as its owner's, and is followed.

    Raises:
        UnsafePathError: If another user owns it (or a directory or symlink on its way), or
            could write into it, or it is not a directory.
        FileNotFoundError: If it does not exist.
    """
    where = Path(os.path.abspath(path))
    _check_path(where.parent)
    st = os.lstat(where)
    if stat.S_ISLNK(st.st_mode):
        problem = _problem(where, st, sticky_ok=False)
        if problem is not None:
            raise UnsafePathError(f"{problem} (a symbolic link); remove it")
        _check_path(Path(os.path.realpath(where)).parent)
        st = os.stat(where)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{where} is not a directory")
    problem = _problem(where, st, sticky_ok=False)
    if problem is not None:
        raise UnsafePathError(
            f"{problem}: another user could plant files or symlinks there; "
            f"chown it to this user and chmod go-w {where}, or give another directory"
        )


def check_file(path: Path, st: os.stat_result, *, private: bool = False) -> None:
    """Check that a file we opened (its fstat `st`) is a regular one that only we control.

    Args:
        path: The file, for the message.
        st: Its ``os.fstat``.
        private: Also refuse a file that others may read (a token).

    Raises:
        UnsafePathError: If not.
    """
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{path} is not a regular file")
    problem = _problem(path, st, sticky_ok=False)
    if problem is None and private and st.st_mode & 0o077:
        problem = f"{path} can be read by others (mode {stat.S_IMODE(st.st_mode):04o})"
    if problem is not None:
        raise UnsafePathError(f"{problem}: refusing to use it")


def open_private(
    path: str | os.PathLike[str],
    flags: int,
    mode: int = 0o600,
    *,
    fresh: bool = False,
    secret: bool = False,
) -> int:
    """Open `path` without following a symlink; refuse a file another user owns.

    Args:
        path: The file, in a directory `safe_dir` checked.
        flags: ``os.O_*`` flags (``O_NOFOLLOW`` and ``O_CLOEXEC`` are added).
        mode: The mode of a file created here.
        fresh: Replace whatever is there (a file, a planted symlink) by a new file, made
            with `mode` whatever the umask allows.
        secret: Also refuse a file that others may read (a token).

    Returns:
        The descriptor.

    Raises:
        UnsafePathError: If `path` is a symbolic link, or not a regular file of root or ours.
        OSError: If it cannot be opened otherwise.
    """
    where = Path(path)
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    if fresh:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(where)  # a symlink itself, never its target
        flags |= os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(where, flags, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(
                f"{where} is a symbolic link: refusing to follow it; remove it"
            ) from None
        raise
    try:
        check_file(where, os.fstat(fd), private=secret)
    except BaseException:
        os.close(fd)
        raise
    return fd


def bind_private(sock: socket.socket, path: str | os.PathLike[str]) -> None:
    """Bind unix socket `sock` at `path` (replacing what is there), mode 0600 from the start.

    Never a chmod after the bind: it would follow a symlink put there meanwhile.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    old = os.umask(0o177)
    try:
        sock.bind(os.fspath(path))
    finally:
        os.umask(old)
