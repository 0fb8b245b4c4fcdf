"""Evaluation shared by ``tools/test.py`` and the pipeline."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.model import is_model_wrapper

from ..errors import ConfigError
from ..utils import check_cfg_options, load_config, load_model_weights
from ..utils.fileio import write_json_atomic  # noqa: F401 (re-exported)
from .train import adapt_to_device, build_runner

SUPPORTED_METRICS = ('mIoU', )


def prepare_test_config(config: str, cfg_options: Optional[dict] = None,
                        work_dir: Optional[str] = None,
                        launcher: str = 'none',
                        show_dir: Optional[str] = None) -> Config:
    """The config as ``tools/test.py`` runs it: no training state is loaded
    by the runner (weights are loaded by :func:`evaluate`)."""
    cfg = load_config(config)
    check_cfg_options(cfg, cfg_options)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('test_dataloader') is None or cfg.get('test_evaluator') is None:
        raise ConfigError(f'{config} has no test_dataloader / test_evaluator')
    cfg.launcher = launcher
    name = osp.splitext(osp.basename(config))[0]
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', name)
    cfg.load_from = None
    cfg.resume = False
    if show_dir:
        hook = cfg.default_hooks.setdefault(
            'visualization', dict(type='SegVisualizationHook'))
        hook['draw'] = True
        hook['interval'] = 1
        cfg.visualizer['save_dir'] = show_dir
    adapt_to_device(cfg, distributed=launcher != 'none')
    return cfg


def metrics_record(metrics: dict) -> dict:
    """``{"mIoU": .., "mAcc": .., "aAcc": .., "per_class": {name: IoU}}``
    from the runner's metric dict (values in percent)."""
    record = {k: v for k, v in metrics.items() if not k.startswith('IoU.')
              and '/IoU.' not in k}
    per_class = {}
    for key, value in metrics.items():
        if key.startswith('IoU.') or '/IoU.' in key:
            prefix, _, name = key.rpartition('IoU.')
            per_class.setdefault(prefix.rstrip('/'), {})[name] = (
                None if value != value else value)  # NaN -> null
    if list(per_class) == ['']:
        record['per_class'] = per_class['']
    else:
        record['per_class'] = per_class
    return record


def evaluate(cfg: Config, checkpoint: str, trust: bool = False) -> dict:
    """Load the evaluated model of ``checkpoint`` (the student of a UDA
    checkpoint, ours or the original's) and run the test loop."""
    runner = build_runner(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    load_model_weights(model, checkpoint, trust=trust)
    runner._has_loaded = True  # nothing for the runner to load
    return runner.test()
