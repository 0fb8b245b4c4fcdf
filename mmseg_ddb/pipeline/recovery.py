"""What a stage's folder needs before it runs again after a crash or a kill:
the ``last_checkpoint`` marker repaired and the previous outputs of a stage
run afresh moved aside (never deleted). Stale temporary files are removed by
:func:`mmseg_ddb.utils.fileio.remove_stale_tmp`."""
import os
import os.path as osp
import re
import time
from typing import Optional

from ..utils.fileio import atomic_write, move_folder


def repair_last_checkpoint(folder: str) -> None:
    """Point ``folder/last_checkpoint`` at the newest complete checkpoint
    before ``--resume``.

    mmengine writes that marker in place (a kill there leaves it empty) and,
    with ``max_keep_ckpts``, deletes the previous checkpoint before it writes
    the next one (a kill there leaves it naming a deleted file); either way
    ``--resume`` would fail on every rerun. Checkpoints are written
    atomically (:mod:`mmseg_ddb.compat`) and stale temporary files are gone,
    so every ``iter_*.pth`` left is complete. Without any, the marker is
    removed and the stage starts over.
    """
    marker = osp.join(folder, 'last_checkpoint')
    if not osp.isfile(marker):
        return
    with open(marker) as f:
        path = f.read().strip()
    if path and osp.isfile(path):
        return
    found = []
    for name in os.listdir(folder):
        m = re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', name)
        if m and osp.isfile(osp.join(folder, name)):
            found.append((int(m.group(1)), osp.join(folder, name)))
    if not found:
        os.remove(marker)  # nothing to resume from: start the stage over
        return
    atomic_write(marker, max(found)[1], mode='w')


def set_aside(folder: str) -> Optional[str]:
    """Move a stage folder that holds files to ``<folder>.old-<time>``, so a
    fresh run of the stage does not mix with (or destroy) the previous one.

    Returns:
        str | None: Where the previous outputs are now; None when there
        were none.
    """
    if not (osp.isdir(folder) and os.listdir(folder)):
        return None
    aside = f'{folder}.old-{time.strftime("%Y%m%d_%H%M%S")}'
    move_folder(folder, aside)
    return aside
