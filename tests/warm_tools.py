"""Warm starts of ``python tools/X.py ...`` for the tests.

Most of a tool command's time in the tests is the interpreter importing
torch, mmengine and mmsegmentation. :class:`WarmTools` runs each command
forked from a zygote that imported them once (the pipeline's own
:mod:`mmseg_ddb.pipeline.warm`, run as ``python tests/warm_tools.py FD``):
the fork runs the script as ``__main__`` with the command's arguments,
environment and folder, with stdout and stderr on their own pipes, and exits
with the script's status, as ``subprocess.run`` would report it. The
bad-input matrix's launch options (see test_bad_inputs.py) are applied in
the fork before the script runs:

* ``--drop-dac``: CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH leave the
  effective, permitted and inheritable sets (no ``exec`` follows, so
  dropping them from the bounding set alone would not take effect) and the
  bounding set (for the commands the tool may run);
* ``--fsize N``: ``RLIMIT_FSIZE`` (the interpreter ignores SIGXFSZ, so a
  write past it fails with EFBIG).

A command that is not ``[sys.executable, SCRIPT.py, ...]`` runs cold, in a
fresh interpreter (with the same environment).
"""
import atexit
import ctypes
import os
import os.path as osp
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from mmseg_ddb.pipeline import warm

#: what the zygote imports (every tool the tests run)
PRELOAD = ('mmseg_ddb.tools.train', 'mmseg_ddb.tools.test',
           'mmseg_ddb.tools.cal_prototype', 'mmseg_ddb.tools.infer',
           'mmseg_ddb.tools.pipeline', 'mmseg_ddb.tools.benchmark',
           'mmseg_ddb.convert')
_CAPS = (1, 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


class _CapHeader(ctypes.Structure):
    _fields_ = [('version', ctypes.c_uint32), ('pid', ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [('effective', ctypes.c_uint32),
                ('permitted', ctypes.c_uint32),
                ('inheritable', ctypes.c_uint32)]


def drop_dac() -> None:
    """This process (and what it executes) loses the capabilities that let
    root ignore file modes."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _CAPS:
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), f'cannot drop capability {cap}')
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), 'capget')
    mask = ~sum(1 << cap for cap in _CAPS) & 0xFFFFFFFF
    for field in ('effective', 'permitted', 'inheritable'):
        setattr(data[0], field, getattr(data[0], field) & mask)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), 'capset')


def prepare(request: dict) -> None:
    """In the fork, before the script: the launch options."""
    launch = list(request.get('launch') or ())
    while launch:
        opt = launch.pop(0)
        if opt == '--drop-dac':
            drop_dac()
        elif opt == '--fsize':
            n = int(launch.pop(0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
        else:
            raise ValueError(f'unknown launch option {opt}')


def _read_both(proc, timeout: float):
    """stdout and stderr of ``proc`` to their ends (kills it on timeout)."""
    chunks = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    sel = selectors.DefaultSelector()
    for fd in chunks:
        sel.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                raise subprocess.TimeoutExpired(proc.pid, timeout)
            for key, _ in sel.select(min(left, 1.0)):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    sel.unregister(key.fd)
    finally:
        sel.close()
    out, err = (b''.join(c).decode(errors='replace') for c in chunks.values())
    return out, err


class WarmRun:
    """A started command: ``pid``, ``communicate(timeout)`` -> ``(stdout,
    stderr)`` and then ``returncode``, as with ``subprocess.Popen``."""

    def __init__(self, proc: Optional[warm.WarmProcess] = None,
                 popen: Optional[subprocess.Popen] = None):
        self._proc, self._popen = proc, popen
        self.pid = (proc or popen).pid
        self.returncode = None

    def communicate(self, timeout: float):
        if self._popen is not None:
            out = self._popen.communicate(timeout=timeout)
            self.returncode = self._popen.returncode
            return out
        try:
            return _read_both(self._proc, timeout)
        finally:
            self.returncode = self._proc.wait()


class WarmTools:
    """``run(cmd, cwd, timeout)`` as ``subprocess.run(cmd, cwd=cwd, env=env,
    capture_output=True, text=True, timeout=timeout)`` and ``start(cmd,
    cwd)`` as ``subprocess.Popen(cmd, cwd=cwd, env=env, stdout=PIPE,
    stderr=PIPE, text=True)``, forked warm."""

    def __init__(self, env: Dict[str, str], cwd: str):
        self.env = dict(env)
        self.zygote = warm.Zygote(sys.executable, self.env, cwd,
                                  server=[osp.abspath(__file__)])

    def start(self, cmd: Sequence[str], cwd: str,
              launch: List[str] = ()) -> WarmRun:
        script = cmd[1] if len(cmd) > 1 else ''
        if cmd[0] != sys.executable or not script.endswith('.py'):
            if launch:
                raise ValueError('launch options need a warm start')
            return WarmRun(popen=subprocess.Popen(
                list(cmd), cwd=cwd, env=self.env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        return WarmRun(self.zygote.start(None, list(cmd[2:]), self.env, cwd,
                                         script=script, stderr=True,
                                         launch=list(launch)))

    def run(self, cmd: Sequence[str], cwd: str, timeout: float,
            launch: List[str] = ()) -> subprocess.CompletedProcess:
        proc = self.start(cmd, cwd, launch)
        out, err = proc.communicate(timeout)
        return subprocess.CompletedProcess(list(cmd), proc.returncode, out,
                                           err)

    def close(self) -> None:
        self.zygote.close()


_SHARED: Dict[tuple, WarmTools] = {}


def shared(env: Dict[str, str]) -> WarmTools:
    """The test session's :class:`WarmTools` for ``env`` (one zygote per
    environment, started at its first command, closed at exit)."""
    key = tuple(sorted(env.items()))
    if key not in _SHARED:
        if not _SHARED:
            atexit.register(lambda: [t.close() for t in _SHARED.values()])
        _SHARED[key] = WarmTools(env, tempfile.gettempdir())
    return _SHARED[key]


if __name__ == '__main__':
    warm.serve(int(sys.argv[1]), preload=PRELOAD,
               allowed=lambda r: r.get('module') is None and str(
                   r.get('script', '')).endswith('.py'),
               prepare=prepare)
