"""Atomic file writes: a temporary file in the same folder, then a rename,
so a reader sees either the previous file or the complete new one."""
import errno
import json
import os
import os.path as osp

from ..errors import DDBError


class WriteError(DDBError, OSError):
    """An output could not be written (disk full, size limit, no permission,
    a file where a folder should be); the message names the file."""


def _hint(folder: str, exc: OSError) -> str:
    """What to do about a failed write in ``folder``."""
    code = getattr(exc, 'errno', None)
    if code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return ('free disk space (or raise the size limit / quota) and rerun'
                '; a training run continues from its last checkpoint with '
                '--resume')
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f'no permission to write in {folder}; choose a writable '
                'output path or fix its permissions')
    if code in (errno.ENOTDIR, errno.EEXIST):
        return (f'a part of {folder} is an existing file, not a folder; '
                'choose another output path')
    return 'check the output path and rerun'


def _write_error(path: str, exc: OSError) -> WriteError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    folder = osp.dirname(osp.abspath(path))
    err = WriteError(f'cannot write {path}: {reason}; {_hint(folder, exc)}. '
                     f'No partial file is left (an existing '
                     f'{osp.basename(path)} is unchanged).')
    err.errno = getattr(exc, 'errno', None)
    return err


def atomic_write(path: str, data, mode: str = 'wb', encoding=None) -> None:
    """Write ``data`` to ``path`` atomically (``mode`` 'wb' or 'w').

    An ``OSError`` (disk full, no permission, ...) becomes a
    :class:`WriteError` naming ``path``; no temporary file is left.
    """
    path = str(path)
    folder = osp.dirname(osp.abspath(path))
    tmp = osp.join(folder, f'.tmp-{os.getpid()}-{osp.basename(path)}')
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if osp.lexists(tmp):
            try:
                os.remove(tmp)
            except OSError:
                pass
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise _write_error(path, exc) from exc
        raise


def check_writable_dir(folder: str, what: str) -> None:
    """Check that a file can be written in ``folder`` (creating it if
    needed, by writing and removing a probe), so a tool fails before its work
    instead of after it. Folders it had to create are removed again. Raises
    :class:`WriteError` naming ``what`` and ``folder``."""
    import tempfile
    folder = osp.abspath(folder)
    created, parent = [], folder
    while parent and not osp.lexists(parent):
        created.append(parent)
        parent = osp.dirname(parent)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix='.tmp-probe-', dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        err = WriteError(f'{what} {folder} is not writable '
                         f'({exc.strerror or exc}); {_hint(folder, exc)}.')
        err.errno = exc.errno
        raise err from exc
    finally:
        for path in created:  # innermost first
            try:
                os.rmdir(path)
            except OSError:
                pass


def write_json_atomic(path: str, obj) -> None:
    """JSON (indented) written atomically."""
    atomic_write(path, json.dumps(obj, indent=2), mode='w', encoding='utf-8')
