"""Atomic file writes: a temporary file in the same folder, then a rename,
so a reader sees either the previous file or the complete new one."""
import json
import os
import os.path as osp


def atomic_write(path: str, data, mode: str = 'wb', encoding=None) -> None:
    """Write ``data`` to ``path`` atomically (``mode`` 'wb' or 'w')."""
    path = str(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.tmp-{os.getpid()}-{osp.basename(path)}')
    try:
        with open(tmp, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def write_json_atomic(path: str, obj) -> None:
    """JSON (indented) written atomically."""
    atomic_write(path, json.dumps(obj, indent=2), mode='w', encoding='utf-8')
