"""The package's file-system rules, each in one place.

* Atomic writes (:func:`atomic_save`, :func:`atomic_write`,
  :func:`write_json_atomic`): a temporary file ``.tmp-<pid>-<name>`` in the
  same folder, then a rename, so a reader sees either the previous file or the
  complete new one. :func:`move_folder` does the same for a whole folder.
* Temporary files of writers that were killed mid-write:
  :func:`remove_stale_tmp`.
* Listing the files of a folder, without those temporary files:
  :func:`list_files`.
* A writable-folder check before the work starts: :func:`check_writable_dir`.
"""
import errno
import json
import os
import os.path as osp
import re
import shutil
from typing import Callable, List, Optional

from ..errors import DataError, DDBError

#: every temporary file of this package starts with it (hidden, so skipped by
#: :func:`list_files` and by most other readers)
TMP_PREFIX = '.tmp-'
_TMP_PID = re.compile(re.escape(TMP_PREFIX) + r'(\d+)')


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


def atomic_save(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and rename the file it wrote to ``path``.

    ``tmp_path`` is ``.tmp-<pid>-<basename>`` in the folder of ``path``
    (created if needed), so it keeps the extension that image encoders look
    at. Whatever ``write`` raises, no temporary file is left; an ``OSError``
    (disk full, no permission, ...) becomes a :class:`WriteError` naming
    ``path``.
    """
    path = str(path)
    folder = osp.dirname(osp.abspath(path))
    tmp = osp.join(folder, f'{TMP_PREFIX}{os.getpid()}-{osp.basename(path)}')
    try:
        os.makedirs(folder, exist_ok=True)
        write(tmp)
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


def atomic_write(path: str, data, mode: str = 'wb', encoding=None) -> None:
    """Write ``data`` to ``path`` atomically (``mode`` 'wb' or 'w'), synced
    to disk before the rename (:func:`atomic_save`)."""
    def write(tmp: str) -> None:
        with open(tmp, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_save(path, write)


def write_json_atomic(path: str, obj) -> None:
    """JSON (indented) written atomically."""
    atomic_write(path, json.dumps(obj, indent=2), mode='w', encoding='utf-8')


def move_folder(src: str, dst: str) -> None:
    """Rename the folder ``src`` to ``dst`` (same file system) in one step:
    a reader sees ``dst`` absent or complete, never half-filled. ``dst``
    must not exist or be an empty folder."""
    os.replace(src, dst)


def _writer_is_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs any more (one of another user runs)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # runs, as another user
        return False
    return False


def remove_stale_tmp(folder: str, recursive: bool = False,
                     folders: bool = False) -> int:
    """Delete the temporary files that writers killed mid-write left behind.

    The one rule: a file ``.tmp-<pid>...`` is removed when no process
    ``<pid>`` runs any more; the files of a writer that still runs (another
    stage, a converter's worker, this process) are left alone, and so are
    names without a pid. Nothing will complete or rename a stale file: a
    partial checkpoint, image, prototype or JSON file.

    Args:
        folder (str): Where to look; nothing happens if it does not exist.
        recursive (bool): Also in its sub-folders.
        folders (bool): Also temporary folders (``.tmp-<pid>...`` folders
            filled and then renamed into place), with their contents.

    Returns:
        int: How many files (and folders) were removed.
    """
    if not osp.isdir(folder):
        return 0
    if recursive:
        walk = os.walk(folder)
    else:
        walk = [(folder, None, os.listdir(folder))]
    removed = 0
    for dirpath, _, names in walk:
        for name in names:
            match = _TMP_PID.match(name)
            path = osp.join(dirpath, name)
            is_folder = folders and osp.isdir(path) and not osp.islink(path)
            if not (match and (osp.isfile(path) or is_folder)
                    and _writer_is_gone(int(match.group(1)))):
                continue
            try:
                if is_folder:
                    shutil.rmtree(path)
                else:
                    os.remove(path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def list_files(folder: str, suffix: str = '', *, recursive: bool = False,
               exclude_suffix: Optional[str] = None,
               hidden: bool = False) -> List[str]:
    """Sorted names of the files in ``folder`` that end in ``suffix``.

    Temporary files (``.tmp-*``) are always skipped.

    Args:
        folder (str): The folder to list.
        suffix (str): The ending of the names to keep ('' for all).
        recursive (bool): Also list the sub-folders (symbolic links
            followed); names are then paths relative to ``folder``.
        exclude_suffix (str, optional): Skip the names ending in it.
        hidden (bool): Keep the other names that start with '.'.

    Raises:
        DataError: ``folder`` or one of its sub-folders cannot be read;
            the message names it.
    """
    def unreadable(exc: OSError) -> None:
        raise DataError(
            f'cannot list folder {exc.filename or folder}: '
            f'{exc.strerror or exc}; fix its permissions (e.g. chmod a+rx) '
            'or run as a user who can read it.') from exc

    def wanted(name: str) -> bool:
        return (name.endswith(suffix) and not name.startswith(TMP_PREFIX)
                and (hidden or not name.startswith('.'))
                and not (exclude_suffix and name.endswith(exclude_suffix)))

    if recursive:
        walk = os.walk(folder, onerror=unreadable, followlinks=True)
    else:
        try:
            with os.scandir(folder) as entries:
                names = [e.name for e in entries if e.is_file()]
        except OSError as exc:
            unreadable(exc)
        walk = [(folder, None, names)]
    found = []
    for dirpath, _, names in walk:
        rel = osp.relpath(dirpath, folder)
        found += [name if rel == '.' else osp.join(rel, name)
                  for name in names if wanted(name)]
    return sorted(found)


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
        fd, probe = tempfile.mkstemp(
            prefix=f'{TMP_PREFIX}{os.getpid()}-probe-', dir=folder)
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
