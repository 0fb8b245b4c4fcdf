"""Running a plan of :mod:`.plan` under one wall-clock budget: each step in
a process group of its own and stopped or killed with its whole process
tree (torchrun puts every rank in a session of its own), lanes side by side
in threads, every step stopped when the budget is spent, and the planned
kills of the DDP runs once their checkpoint is complete."""
import os
import os.path as osp
import signal
import subprocess
import threading
import time
from typing import Dict, List, Optional

from ..utils.paths import REPO_ROOT
from .plan import Plan, Step

#: a step is not started with less time than this left
MIN_START_S = 20
#: after SIGTERM at the deadline, SIGKILL this much later
GRACE_S = 10
#: the steps' deadline comes this much before the end of the budget: the
#: time to stop them and to write the report
STOP_RESERVE_S = GRACE_S + 5
POLL_S = 0.05


class Deadline:
    """``budget_s`` seconds from its creation, or none left once
    :meth:`cancel` ed (Ctrl-C)."""

    def __init__(self, budget_s: float, clock=time.monotonic):
        self.clock = clock
        self.end = clock() + budget_s
        self.cancelled = False

    def left(self) -> float:
        return float('-inf') if self.cancelled else self.end - self.clock()

    def cancel(self) -> None:
        self.cancelled = True


def step_result(status: str, *, seconds: float = 0.0, returncode: Optional[int] = None,
                reason: str = '', log: Optional[str] = None) -> dict:
    """What running a step gave. ``status``: ``ok`` (exit 0), ``killed``
    (its planned SIGKILL), ``failed``, ``timeout`` (stopped at the end of the
    budget) or ``not run`` (with the ``reason``)."""
    return dict(status=status, seconds=round(seconds, 1), returncode=returncode,
                reason=reason, log=log)


def checkpoint_written(work_dir: str, name: str) -> bool:
    """``work_dir/last_checkpoint`` (written once a checkpoint is complete)
    points at ``name``."""
    try:
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            return f.read().strip().endswith(name)
    except OSError:
        return False


def process_tree(pid: int) -> List[int]:
    """``pid`` and all its descendants now alive (from ``/proc``; Linux).
    torchrun starts each rank in a session of its own, so the ranks are not
    in the step's process group: a kill must name them."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                # "pid (comm) state ppid ...": comm may hold spaces
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def signal_tree(proc: subprocess.Popen, sig: int, tree: Optional[List[int]] = None) -> None:
    """Send ``sig`` to the step's process group and to every process of its
    tree (``tree``, or the tree now)."""
    for pid in tree if tree is not None else process_tree(proc.pid):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM the step's processes, SIGKILL those left ``grace_s`` later
    (the tree is taken first: orphans cannot be found by ancestry)."""
    tree = process_tree(proc.pid)
    signal_tree(proc, signal.SIGTERM, tree)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    signal_tree(proc, signal.SIGKILL, tree + process_tree(proc.pid))
    proc.wait()


def child_env(step: Step, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The step's environment: ours, this checkout first on PYTHONPATH
    (the children import this very package), unbuffered output, a few
    threads per process unless OMP_NUM_THREADS is set (many processes share
    the CPU), and the step's own variables."""
    env = dict(os.environ if base is None else base)
    env['PYTHONPATH'] = REPO_ROOT + (os.pathsep + env['PYTHONPATH']
                                     if env.get('PYTHONPATH') else '')
    env['PYTHONUNBUFFERED'] = '1'
    env.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 4) // 4)))
    env.update(step.env)
    return env


def run_step(step: Step, deadline: Deadline, live: List[subprocess.Popen]) -> dict:
    """Run ``step`` to its end, its planned kill or the deadline."""
    if deadline.left() < MIN_START_S:
        reason = 'interrupted' if deadline.cancelled else 'the time budget was spent'
        return step_result('not run', reason=reason, log=step.log)
    os.makedirs(osp.dirname(step.log), exist_ok=True)
    start = time.monotonic()
    with open(step.log, 'a') as log:
        log.write(f'$ {step.line()}\n')
        log.flush()
        proc = subprocess.Popen(step.cmd, cwd=REPO_ROOT, env=child_env(step), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        live.append(proc)
        try:
            outcome = _watch(step, proc, deadline)
        finally:
            if proc.poll() is None:
                stop(proc)
            live.remove(proc)
    status, reason = outcome
    return step_result(status, reason=reason, seconds=time.monotonic() - start,
                       returncode=proc.returncode, log=step.log)


def _watch(step: Step, proc: subprocess.Popen, deadline: Deadline):
    """Wait for ``proc``: (status, reason)."""
    while True:
        code = proc.poll()
        if code is not None:
            if step.kill_at:
                return 'failed', (f'finished (exit {code}) before {step.kill_at} could be '
                                  'killed')
            return ('ok', '') if code == 0 else ('failed', f'exit {code}')
        if step.kill_at and checkpoint_written(step.work_dir, step.kill_at):
            tree = process_tree(proc.pid)
            signal_tree(proc, signal.SIGKILL, tree)
            proc.wait()
            _wait_gone(tree)
            return 'killed', f'SIGKILL after {step.kill_at}'
        if deadline.left() <= 0:
            stop(proc)
            if deadline.cancelled:
                return 'failed', 'interrupted'
            return 'timeout', 'stopped: the time budget was spent'
        time.sleep(POLL_S)


def _wait_gone(pids: List[int], timeout_s: float = 30) -> None:
    """Until none of ``pids`` runs (a killed rank may take a moment to go;
    the resumed run must not meet it)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                with open(f'/proc/{pid}/stat') as f:
                    if f.read().rsplit(')', 1)[1].split()[0] != 'Z':
                        alive.append(pid)
            except (OSError, IndexError):
                pass
        if not alive:
            return
        time.sleep(POLL_S)


def run_lane(lane: List[Step], deadline: Deadline, results: Dict[str, dict],
             live: List[subprocess.Popen]) -> None:
    """The lane's steps in order; after a step of a part goes wrong the
    lane's later steps of that part are not run (they need its outputs)."""
    broken = {}
    for step in lane:
        if step.part in broken:
            results[step.name] = step_result(
                'not run', reason=f'{broken[step.part]} did not succeed', log=step.log)
            continue
        try:
            results[step.name] = run_step(step, deadline, live)
        except Exception as exc:  # reported as the step's failure, not lost in a thread
            results[step.name] = step_result('failed', reason=f'gpu check error: {exc!r}',
                                             log=step.log)
        if results[step.name]['status'] not in ('ok', 'killed'):
            broken[step.part] = step.name


def run_plan(plan: Plan, deadline: Deadline) -> Dict[str, dict]:
    """Every step's :func:`step_result`, by name. Ctrl-C stops every running
    step (their process groups) and reports the rest as not run."""
    results: Dict[str, dict] = {}
    live: List[subprocess.Popen] = []
    try:
        for phase in plan:
            threads = [threading.Thread(target=run_lane, args=(lane, deadline, results, live),
                                        daemon=True) for lane in phase]
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(timeout=0.5)
    except KeyboardInterrupt:
        deadline.cancel()  # the lanes stop their steps and start no more
        for proc in list(live):
            stop(proc, grace_s=2)
    for phase in plan:
        for lane in phase:
            for step in lane:
                results.setdefault(step.name, step_result(
                    'not run', reason='interrupted', log=step.log))
    return results
