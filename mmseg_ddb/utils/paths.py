"""Where the package is: the one place that computes the repository root."""
import os.path as osp

#: the folder holding the ``mmseg_ddb`` package: in a checkout (or an editable
#: install) the repository, with ``configs/`` and ``tools/`` beside the package
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def repo_path(*parts: str) -> str:
    """A path inside the repository, e.g. ``repo_path('configs', 'synthetic')``."""
    return osp.join(REPO_ROOT, *parts)
