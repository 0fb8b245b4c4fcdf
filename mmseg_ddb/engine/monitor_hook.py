"""The stage's pseudo-label report (``models/uda/monitor.py``): the
confusion matrices a monitored UDA stage summed over its iterations, written
as per-class values to ``WORK_DIR/pseudo_labels.json`` when training ends,
carried across a resume in the checkpoints."""
import os.path as osp
from typing import Optional

from mmengine.dist import all_reduce, get_rank, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ..models.uda.monitor import monitor_report
from ..utils.fileio import write_json_atomic

#: the report's file in the stage's work dir (read by the pipeline)
MONITOR_FILE = 'pseudo_labels.json'
#: the checkpoint key of the summed confusion matrices (all ranks)
CHECKPOINT_KEY = 'pseudo_label_monitor'


def _monitor(runner):
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    return getattr(model, 'pl_monitor', None)


def _summed(totals: dict) -> dict:
    """``totals`` summed over the ranks (copies; one all-reduce each)."""
    out = {}
    for name in sorted(totals):
        value = totals[name].clone()
        if get_world_size() > 1:
            all_reduce(value, op='sum')
        out[name] = value
    return out


@HOOKS.register_module()
class PseudoLabelMonitorHook(Hook):
    """Writes the pseudo-label report of a monitored stage (a model with a
    ``pl_monitor``; any other model is left alone).

    At the end of training the confusion matrices of every rank are summed
    and ``WORK_DIR/pseudo_labels.json`` (:func:`monitor_report`, the classes
    from the training set's metainfo) is written atomically. Each checkpoint
    holds the sums so far (gathered on every rank right before the save, as
    ``RNGStateHook`` does), and a resumed stage continues from them: rank 0
    takes them, the other ranks start from zero, so the final sum counts
    every iteration once. A run started with ``--load-from`` counts from
    zero.
    """

    priority = 'LOW'

    def __init__(self):
        self._captured = None
        self._pending = None

    def before_checkpoint_every_rank(self, runner) -> None:
        monitor = _monitor(runner)
        if monitor is not None:
            self._captured = (runner.iter, {
                k: v.cpu() for k, v in _summed(monitor.state()).items()})

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        captured, self._captured = self._captured, None
        if captured is not None and captured[0] == runner.iter:
            checkpoint[CHECKPOINT_KEY] = captured[1]
        elif _monitor(runner) is not None and get_world_size() == 1:
            checkpoint[CHECKPOINT_KEY] = {
                k: v.cpu() for k, v in _monitor(runner).state().items()}

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta') or {}
        self._pending = (meta.get('iter'), checkpoint.get(CHECKPOINT_KEY))

    def before_train(self, runner) -> None:
        pending, self._pending = self._pending, None
        monitor = _monitor(runner)
        if monitor is None or pending is None or not pending[1]:
            return
        saved_iter, totals = pending
        if runner.iter == 0 or saved_iter != runner.iter or get_rank() != 0:
            return
        device = next(runner.model.parameters()).device
        monitor.load_state({k: v.to(device) for k, v in totals.items()})

    def after_train(self, runner) -> None:
        monitor = _monitor(runner)
        if monitor is None:
            return
        totals = _summed(monitor.state())
        if not is_main_process() or not totals:
            return
        write_json_atomic(osp.join(runner.work_dir, MONITOR_FILE),
                          monitor_report(totals, self._classes(runner),
                                         monitor.threshold))

    @staticmethod
    def _classes(runner) -> list:
        monitor = _monitor(runner)
        meta: Optional[dict] = None
        try:
            meta = runner.train_dataloader.dataset.metainfo
        except AttributeError:
            pass
        classes = list((meta or {}).get('classes') or [])
        if len(classes) != monitor.num_classes:
            classes = [str(i) for i in range(monitor.num_classes)]
        return classes


__all__ = ['CHECKPOINT_KEY', 'MONITOR_FILE', 'PseudoLabelMonitorHook']
