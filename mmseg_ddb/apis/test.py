"""Evaluation shared by ``tools/test.py`` and the pipeline."""
import copy
import os.path as osp
from typing import Iterator, Optional, Sequence

from mmengine.config import Config
from mmengine.model import BaseTTAModel, is_model_wrapper

from ..errors import ConfigError
from ..evaluation.metrics import metrics_record  # noqa: F401 (re-exported)
from ..utils import load_config, load_model_weights, use_channels_last
from ..utils.fileio import write_json_atomic  # noqa: F401 (re-exported)
from .onnx_runtime import is_onnx_file, use_onnxruntime
from .train import adapt_to_device, build_runner, stop_loader_workers

SUPPORTED_METRICS = ('mIoU', )
#: ``--aug-test`` scales: the standard multi-scale + flip protocol
#: (ratios of the config's test size)
DEFAULT_AUG_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
#: ``--mode slide`` window and stride at full resolution: a 1024 window at
#: full resolution sees what a 512 training crop of the half-resolution
#: image saw
DEFAULT_SLIDE_CROP = (1024, 1024)
DEFAULT_SLIDE_STRIDE = (683, 683)


def _test_datasets(node) -> Iterator[dict]:
    """Every dataset dict with a ``pipeline`` under ``node`` (one dataset,
    or a ``ConcatDataset`` of several targets)."""
    if isinstance(node, dict):
        if 'pipeline' in node:
            yield node
        for key in ('datasets', 'dataset'):
            child = node.get(key)
            for item in (child if isinstance(child, list) else [child]):
                yield from _test_datasets(item)


def _split_at_resize(pipeline: list, config: str):
    """(transforms before the test resize, the resize or None, after)."""
    for i, t in enumerate(pipeline):
        if t.get('type') in ('Resize', 'mmseg.Resize', 'RandomResize'):
            return pipeline[:i], t, pipeline[i + 1:]
    for i, t in enumerate(pipeline):  # no resize: right after the loading
        if 'LoadImage' in str(t.get('type')):
            return pipeline[:i + 1], None, pipeline[i + 1:]
    raise ConfigError(f'{config}: the test pipeline has no image loading '
                      'transform to build the test-time augmentation on')


def full_resolution_pipeline(pipeline: list, config: str) -> list:
    """The test pipeline without its resize: the network sees the image at
    its full resolution (``--mode slide``)."""
    before, _, after = _split_at_resize(pipeline, config)
    return before + after


def aug_test_pipeline(pipeline: list, scales: Sequence[float],
                      flip: bool, config: str) -> list:
    """The test pipeline with its resize replaced by ``TestTimeAug`` over
    ``scales`` (ratios of the resize's target size, or of the image size
    when the pipeline does not resize) and, with ``flip``, horizontal
    flips."""
    before, resize, after = _split_at_resize(pipeline, config)
    pack = [t for t in after if t.get('type') == 'PackSegInputs']
    rest = [t for t in after if t.get('type') != 'PackSegInputs']
    if not pack:
        raise ConfigError(f'{config}: the test pipeline does not end with '
                          'PackSegInputs')
    if resize is not None and resize.get('scale') is not None:
        w, h = resize['scale']
        resizes = [dict(type='Resize', scale=(round(w * r), round(h * r)),
                        keep_ratio=resize.get('keep_ratio', True))
                   for r in scales]
    else:
        resizes = [dict(type='Resize', scale_factor=r, keep_ratio=True)
                   for r in scales]
    flips = [dict(type='RandomFlip', prob=0., direction='horizontal')]
    if flip:
        flips.append(dict(type='RandomFlip', prob=1., direction='horizontal'))
    transforms = [resizes, flips] + [[t] for t in rest] + [pack]
    return before + [dict(type='TestTimeAug', transforms=transforms)]


def apply_test_protocol(cfg: Config, config: str, mode: str = 'whole',
                        slide_crop: Sequence[int] = DEFAULT_SLIDE_CROP,
                        slide_stride: Sequence[int] = DEFAULT_SLIDE_STRIDE,
                        aug_test: bool = False,
                        aug_scales: Sequence[float] = DEFAULT_AUG_SCALES,
                        aug_flip: bool = True) -> None:
    """Switch ``cfg`` from the default protocol (whole image at the config's
    test size, METHOD.md 3) to a sliding window at full resolution and/or
    flip + multi-scale test-time augmentation."""
    if mode not in ('whole', 'slide'):
        raise ConfigError(f'--mode {mode}: use whole or slide')
    datasets = list(_test_datasets(cfg.test_dataloader.get('dataset')))
    if mode == 'slide':
        for crop, name in ((slide_crop, '--slide-crop'),
                           (slide_stride, '--slide-stride')):
            if len(crop) != 2 or min(crop) <= 0:
                raise ConfigError(f'{name} {" ".join(map(str, crop))}: give '
                                  'two positive sizes, H W')
        if slide_stride[0] > slide_crop[0] or slide_stride[1] > slide_crop[1]:
            raise ConfigError('--slide-stride must not exceed --slide-crop '
                              '(windows would leave gaps)')
        for ds in datasets:
            ds['pipeline'] = full_resolution_pipeline(ds['pipeline'], config)
        cfg.model.test_cfg = dict(mode='slide', crop_size=tuple(slide_crop),
                                  stride=tuple(slide_stride))
    if aug_test:
        if not aug_scales or min(aug_scales) <= 0:
            raise ConfigError('--aug-scales: give one or more positive '
                              'ratios, e.g. 0.75 1.0 1.25')
        for ds in datasets:
            ds['pipeline'] = aug_test_pipeline(ds['pipeline'], aug_scales,
                                               aug_flip, config)
        cfg.model = dict(type='DDBTTAModel', module=copy.deepcopy(cfg.model))


def prepare_test_config(config: str, cfg_options: Optional[dict] = None,
                        work_dir: Optional[str] = None,
                        launcher: str = 'none',
                        show_dir: Optional[str] = None,
                        amp: bool = False,
                        out_dir: Optional[str] = None,
                        plot_dir: Optional[str] = None,
                        channels_last: bool = False,
                        **protocol) -> Config:
    """The config as ``tools/test.py`` runs it: no training state is loaded
    by the runner (weights are loaded by :func:`evaluate`).

    Args:
        amp (bool): Run the network in bf16 (fp16 on GPUs without bf16).
        channels_last (bool): Weights and inputs in channels_last format.
        out_dir (str, optional): Write every prediction as a train-id PNG.
        plot_dir (str, optional): Write the confusion matrix (PNG + npy).
        **protocol: ``mode``, ``slide_crop``, ``slide_stride``,
            ``aug_test``, ``aug_scales``, ``aug_flip`` of
            :func:`apply_test_protocol`.
    """
    cfg = load_config(config, cfg_options)
    if cfg.get('test_dataloader') is None or cfg.get('test_evaluator') is None:
        raise ConfigError(f'{config} has no test_dataloader / test_evaluator')
    cfg.launcher = launcher
    name = osp.splitext(osp.basename(config))[0]
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', name)
    cfg.load_from = None
    cfg.resume = False
    apply_test_protocol(cfg, config, **protocol)
    cfg.test_cfg = dict(type='DDBTestLoop', amp=amp)
    if channels_last:
        use_channels_last(cfg.model)
    if out_dir or plot_dir:
        evaluators = cfg.test_evaluator if isinstance(
            cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
        ours = [e for e in evaluators if e.get('type') == 'DDBIoUMetric']
        if not ours:
            raise ConfigError(f'{config}: --out / --plot-dir need a '
                              'test_evaluator of type DDBIoUMetric')
        if out_dir:  # the predictions are the same for every metric
            ours[0]['output_dir'] = out_dir
        for metric in ours if plot_dir else ():
            metric['plot_dir'] = plot_dir
    if show_dir:
        hook = cfg.default_hooks.setdefault(
            'visualization', dict(type='SegVisualizationHook'))
        hook['draw'] = True
        hook['interval'] = 1
        cfg.visualizer['save_dir'] = show_dir
    adapt_to_device(cfg, distributed=launcher != 'none')
    return cfg


def evaluate(cfg: Config, checkpoint: str, trust: bool = False) -> dict:
    """Load the evaluated model of ``checkpoint`` (the student of a UDA
    checkpoint, ours or the original's) and run the test loop. An ``.onnx``
    file (``tools/export_onnx.py``) computes the logits with onnxruntime
    instead, inside the same protocol."""
    runner = build_runner(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    if isinstance(model, BaseTTAModel):
        model = model.module
    if is_onnx_file(checkpoint):
        use_onnxruntime(model, checkpoint)
    else:
        load_model_weights(model, checkpoint, trust=trust)
    runner._has_loaded = True  # nothing for the runner to load
    try:
        return runner.test()
    finally:
        stop_loader_workers(runner)
