"""Warm starts of the pipeline's stage processes on a CPU-only machine.

Every stage tool (``mmseg_ddb.tools.train`` / ``.test`` / ``.cal_prototype``)
spends seconds importing torch, mmengine and mmsegmentation before its first
line of work; a pipeline starts a dozen of them. On a machine without CUDA
the pipeline instead starts one *zygote* process (``python -m
mmseg_ddb.pipeline.zygote FD``) that imports the tools once, then forks it for
each stage: the fork runs ``module.main()`` with the stage's own
``sys.argv``, environment, working folder and output pipe, exactly the
command line it would have run in a fresh interpreter, and exits with the
same status. The zygote imports only (no tensor work, no CUDA, no threads),
so each fork starts from the state a fresh process has after its imports.

Kill semantics are those of a cold start: the zygote dies with the pipeline
and each stage with the zygote (``PR_SET_PDEATHSIG``), so killing the
pipeline takes its running stage down with it.

Warm starts are used only where they are safe: no CUDA device visible to
torch (a CUDA runtime does not survive a fork), one process per stage (no
torchrun / srun), no per-stage environment beyond ``CUDA_VISIBLE_DEVICES``.
``DDB_WARM_STARTS=0`` turns them off; any failure of the zygote falls back
to a cold start.
"""
import atexit
import importlib
import json
import os
import runpy
import select
import signal
import socket
import subprocess
import sys
import threading
import traceback
from typing import Callable, Dict, List, Optional, Sequence

from ..utils.processes import die_with_parent

#: the stage tools a zygote serves (imported once by the zygote)
WARM_MODULES = ('mmseg_ddb.tools.train', 'mmseg_ddb.tools.test',
                'mmseg_ddb.tools.cal_prototype')
#: per-stage environment keys a warm start may change (read lazily, not at
#: import time)
LAZY_ENV = frozenset({'CUDA_VISIBLE_DEVICES'})
#: the environment variable that turns warm starts off (``0``)
SWITCH = 'DDB_WARM_STARTS'
_MSG = 65536


def enabled() -> bool:
    """Warm starts are on unless ``DDB_WARM_STARTS=0`` and only where torch
    sees no CUDA device."""
    if os.environ.get(SWITCH, '1').strip() in ('0', 'false', 'no', 'off'):
        return False
    import torch
    return not torch.cuda.is_available()


class WarmProcess:
    """A stage forked by the zygote: ``stdout`` (text; its stderr too unless
    ``stderr`` is a pipe of its own), ``pid`` and :meth:`wait`, like a
    ``Popen``."""

    def __init__(self, zygote: 'Zygote', pid: int, stdout, stderr=None):
        self._zygote, self.pid = zygote, pid
        self.stdout, self.stderr = stdout, stderr
        self.returncode = None

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self._zygote.exit_code(self.pid)
            for f in (self.stdout, self.stderr):
                if f is not None:
                    f.close()
        return self.returncode


class Zygote:
    """The pipeline's side of one zygote process (started lazily). Threads
    may start and wait for forks at the same time.

    ``server``: the command after the interpreter that starts the zygote with
    the socket's descriptor appended (default: this package's, serving
    :data:`WARM_MODULES`)."""

    def __init__(self, python: str, env: Dict[str, str], cwd: str,
                 server: Sequence[str] = ('-m', 'mmseg_ddb.pipeline.zygote')):
        self.python, self.env, self.cwd = python, dict(env), cwd
        self.server = list(server)
        self.proc = None
        self.sock = None
        self._starting = threading.Lock()  # one request in flight
        self._cond = threading.Condition()  # guards what follows
        self._reading = False  # a thread is in recv()
        self._reply = None  # the reply to the request in flight
        self._codes = {}  # pid -> exit status, not yet collected
        self._gone = False

    def serves(self, python: str, env: Dict[str, str], cwd: str) -> bool:
        """Whether a stage with this interpreter, environment (all but
        :data:`LAZY_ENV`) and folder can be forked from this zygote."""
        strip = lambda e: {k: v for k, v in e.items()  # noqa: E731
                           if k not in LAZY_ENV}
        return (python == self.python and cwd == self.cwd
                and strip(env) == strip(self.env))

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [self.python, *self.server, str(theirs.fileno())],
            cwd=self.cwd, env=self.env,
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent)
        theirs.close()
        self.sock = ours

    def start(self, module: Optional[str], args: List[str],
              env: Dict[str, str], cwd: str, **request) -> WarmProcess:
        """Fork the zygote to run ``python -m module *args`` (``module``
        None and ``script=PATH``: ``python PATH *args``), its stdout and
        stderr on one pipe (``stdout``); ``stderr=True``: on a second pipe
        (``WarmProcess.stderr``). Other keywords go to the server's
        ``prepare``."""
        separate = request.pop('stderr', False)
        pipes = [os.pipe() for _ in range(2 if separate else 1)]
        request = dict(request, module=module, args=list(args),
                       env=dict(env), cwd=cwd)
        try:
            with self._starting:
                if self.sock is None:
                    self._start()
                socket.send_fds(self.sock, [json.dumps(request).encode()],
                                [w for _, w in pipes])
                with self._cond:
                    while self._reply is None:
                        self._next()
                    reply, self._reply = self._reply, None
            if 'error' in reply:
                raise RuntimeError(f'warm start failed: {reply["error"]}')
        except BaseException:
            for r, _ in pipes:
                os.close(r)
            raise
        finally:
            for _, w in pipes:
                os.close(w)
        files = [os.fdopen(r, 'r', errors='replace') for r, _ in pipes]
        return WarmProcess(self, reply['pid'], *files)

    def _next(self) -> None:
        """Read one message (or wait while another thread reads one); the
        caller holds ``_cond``."""
        if self._gone:
            raise RuntimeError('the warm-start zygote exited (its messages '
                               'are on the console)')
        if self._reading:
            self._cond.wait()
            return
        self._reading = True
        self._cond.release()
        try:
            data = self.sock.recv(_MSG)
        finally:
            self._cond.acquire()
            self._reading = False
            self._cond.notify_all()
        if not data:
            self._gone = True
            return
        message = json.loads(data)
        if 'exit' in message:
            self._codes[message['pid']] = message['exit']
        else:
            self._reply = message

    def exit_code(self, pid: int) -> int:
        """The exit status of the fork ``pid`` (waits for it)."""
        with self._cond:
            while pid not in self._codes:
                self._next()
            return self._codes.pop(pid)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


_ZYGOTES: List[Zygote] = []


def zygote_for(python: str, env: Dict[str, str], cwd: str) -> Zygote:
    """This process's zygote for stages with this interpreter, environment
    and folder (one is started per distinct combination; all are closed at
    exit)."""
    for zygote in _ZYGOTES:
        if zygote.serves(python, env, cwd):
            return zygote
    if not _ZYGOTES:
        atexit.register(lambda: [z.close() for z in _ZYGOTES])
    zygote = Zygote(python, env, cwd)
    _ZYGOTES.append(zygote)
    return zygote


# -- the zygote ----------------------------------------------------------------
def _exit_status(code) -> int:
    """The exit status of ``SystemExit(code)``, as the interpreter gives it
    (a message is printed to stderr with status 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _child(request: dict, fds: List[int], zygote_pid: int,
           prepare: Optional[Callable[[dict], None]]) -> None:
    """In the fork: become ``python -m <module> <args>`` (or ``python
    <script> <args>``) and exit."""
    die_with_parent(zygote_pid)
    os.dup2(fds[0], 1)
    os.dup2(fds[-1], 2)
    for fd in set(fds):
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    status = 1
    try:
        os.chdir(request['cwd'])
        os.environ.clear()
        os.environ.update(request['env'])
        if prepare is not None:
            prepare(request)
        try:
            if request['module']:
                module = importlib.import_module(request['module'])
                sys.argv = [module.__file__] + request['args']
                module.main()
            else:
                script = request['script']
                sys.argv = [script] + request['args']
                sys.path[0] = os.path.dirname(os.path.abspath(script))
                runpy.run_path(script, run_name='__main__')
            status = 0
        finally:
            if hasattr(threading, '_shutdown'):
                threading._shutdown()  # wait for non-daemon threads
    except SystemExit as e:
        status = _exit_status(e.code)
    except BaseException:
        traceback.print_exc()
        status = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


def serve(fd: int, preload: Sequence[str] = WARM_MODULES,
          allowed: Callable[[dict], bool] = lambda r: r.get('module') in
          WARM_MODULES, prepare: Optional[Callable[[dict], None]] = None
          ) -> None:
    """The zygote: import ``preload``, then fork one child per ``allowed``
    request on the socket ``fd`` (``prepare(request)`` runs in the child
    first) and report each child's pid and exit status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the stages get Ctrl-C
    for name in preload:
        importlib.import_module(name)
    sock = socket.socket(fileno=fd)
    me = os.getpid()
    running = set()
    while True:
        ready, _, _ = select.select([sock], [], [], 0.05 if running else None)
        if ready:
            try:
                data, fds, _, _ = socket.recv_fds(sock, _MSG, 2)
            except OSError:
                data, fds = b'', []
            if not data:
                break
            request = json.loads(data)
            try:
                if not allowed(request) or len(fds) not in (1, 2):
                    raise ValueError(f'cannot warm-start {request}')
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
            except Exception as e:  # noqa: BLE001  (reported to the caller)
                for f in fds:
                    os.close(f)
                sock.send(json.dumps(dict(error=str(e))).encode())
                continue
            if pid == 0:
                sock.close()
                _child(request, fds, me, prepare)
            for f in fds:
                os.close(f)
            running.add(pid)
            sock.send(json.dumps(dict(pid=pid)).encode())
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            running.discard(pid)
            sock.send(json.dumps(dict(
                pid=pid, exit=os.waitstatus_to_exitcode(status))).encode())
    for pid in running:  # the pipeline is gone: so are its stages
        os.kill(pid, signal.SIGKILL)
    os._exit(0)

