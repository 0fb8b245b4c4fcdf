"""Child processes that must not outlive the process that started them."""
import ctypes
import os
import signal
from typing import Optional

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: Optional[int] = None) -> None:
    """SIGKILL this process when its parent dies (Linux; elsewhere nothing is
    set). ``parent``: the pid the parent must still have, else exit at once (it
    died before the call)."""
    try:
        ctypes.CDLL('libc.so.6').prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    if parent is not None and os.getppid() != parent:
        os._exit(1)
