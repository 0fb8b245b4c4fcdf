"""Base of the DDB training stages: a wrapper around unmodified segmentors.

The evaluated model (the *student*) is a plain :class:`DDBEncoderDecoder`
stored under a stable prefix (``model.`` in Stage 1, ``stu_model.`` in
Stage 2, the original's layout), so ``tools/test.py`` and the next stage read
the checkpoint without renaming. Predictions always come from the student.

Call graph::

    train_step(data)            (mmengine BaseModel / MMDDP)
      data_preprocessor(data)   -> dict(source=..., target=...)
      forward(mode='loss')      -> loss(source, target)  [subclass]
    val_step / test_step        -> forward(mode='predict') -> student.predict

Debug record: a hook that draws the training step (``UDADebugImageHook``)
sets ``debug_wanted = True`` before the step it draws; the step then keeps
the tensors it used for the first ``DEBUG_SAMPLES`` samples in
``debug_record`` (detached, on the device: nothing is copied to the host
here), which the hook reads and clears. With ``debug_wanted`` False nothing
is computed or kept. The keys are listed in each stage's docstring.
"""
import contextlib
import copy
from functools import cached_property
from typing import Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModel
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor, nn

from ...errors import ConfigError
from ..losses import weighted_cross_entropy
from .bridging import BLUR_MODES
from .monitor import MONITOR_FIELD, PseudoLabelMonitor, monitor_labels


def build_segmentor(cfg: ConfigType, frozen: bool = False) -> nn.Module:
    """A segmentor from its config; ``frozen`` ones get no gradients."""
    model = MODELS.build(copy.deepcopy(cfg))
    if frozen:
        model.requires_grad_(False)
    return model


def augmentation_args(jitter_prob: float, jitter_strength: float,
                      blur_prob: float, sigma_range, blur_mode: str) -> dict:
    """Checked keyword arguments of ``photometric_augment`` (METHOD.md 2.2),
    shared by both stages."""
    if blur_mode not in BLUR_MODES:
        raise ValueError(f'blur_mode={blur_mode!r}; expected one of '
                         f'{BLUR_MODES}')
    return dict(jitter_prob=jitter_prob, jitter_strength=jitter_strength,
                blur_prob=blur_prob, sigma_range=tuple(sigma_range),
                blur_mode=blur_mode)


#: ``teacher_precision``: ``'amp'`` (under ``--amp`` the teachers' forward
#: passes run in the step's autocast dtype, like the student's) or ``'fp32'``
#: (they run in fp32 even under ``--amp``); no difference without ``--amp``
TEACHER_PRECISIONS = ('amp', 'fp32')


def check_teacher_precision(value: str, owner: str) -> str:
    """``value`` if it is one of :data:`TEACHER_PRECISIONS`, else a
    ValueError naming ``owner``."""
    if value not in TEACHER_PRECISIONS:
        raise ValueError(f'{owner}: teacher_precision={value!r}; expected one '
                         f'of {TEACHER_PRECISIONS}')
    return value


#: samples a debug record keeps (the hook draws at most this many)
DEBUG_SAMPLES = 4


def stack_labels(data_samples: SampleList) -> Tensor:
    """Ground truth of a batch as [B, H, W] long."""
    return torch.stack([s.gt_sem_seg.data[0] for s in data_samples]).long()


def _debug_value(value):
    if isinstance(value, Tensor):
        value = value.detach()
        return value[:DEBUG_SAMPLES] if value.dim() > 0 else value
    if isinstance(value, (list, tuple)):
        return [_debug_value(v) for v in value]
    return value


class UDASegmentor(BaseModel):
    """Holds what every stage shares. Subclasses define
    ``loss(source, target) -> dict`` (the training step of their stage).

    Args:
        segmentor (dict): Config of the student (and teacher) segmentor.
        avg_non_ignore (bool): Loss normalisation. ``False`` (original): mean
            over all B*H*W pixels, ignored ones included (METHOD.md 6.13);
            ``True``: mean over the non-ignored pixels.
        data_preprocessor (dict, optional): Used only if the segmentor has
            none; its type becomes ``UDADataPreProcessor`` either way.
        init_cfg (dict, optional): Initialisation config.
        monitor_pseudo_labels (bool): Score the labels the stage trains on
            against the target's own labels (``monitor.py``); the
            subclass builds ``pl_monitor`` with :meth:`build_monitor`.
    """

    #: attribute of the evaluated model (the checkpoint prefix)
    student_name = 'model'

    def __init__(self, segmentor: ConfigType, avg_non_ignore: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 monitor_pseudo_labels: bool = False):
        # the segmentor's own preprocessor wins: mmengine's Runner passes the
        # config's top-level `data_preprocessor` variable as a default, which
        # a base file may have left at another crop size
        preprocessor = dict(segmentor.get('data_preprocessor') or
                            data_preprocessor or {})
        preprocessor['type'] = 'UDADataPreProcessor'
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.segmentor_cfg = copy.deepcopy(segmentor)
        self.avg_non_ignore = avg_non_ignore
        # set by the debug-image hook for the steps it draws (see above)
        self.debug_wanted = False
        self.debug_record: Optional[dict] = None
        self.monitor_pseudo_labels = bool(monitor_pseudo_labels)
        #: the stage's pseudo-label monitor (None when monitoring is off)
        self.pl_monitor: Optional[PseudoLabelMonitor] = None

    def build_monitor(self, threshold: Optional[float] = None) -> None:
        """Create ``pl_monitor`` when monitoring is on (after the student
        exists: it gives the classes and the ignore index)."""
        if self.monitor_pseudo_labels:
            self.pl_monitor = PseudoLabelMonitor(
                self.student.decode_head.num_classes, self.ignore_index,
                threshold)

    def monitor_labels(self, target: dict) -> Optional[Tensor]:
        """The target batch's own labels [B, H, W] when monitoring is on,
        else None (never read by a loss)."""
        if self.pl_monitor is None:
            return None
        labels = monitor_labels(target['data_samples'],
                                tuple(target['inputs'].shape[2:]),
                                self.ignore_index)
        if labels is None:
            raise ConfigError(
                'uda.monitor_pseudo_labels=True, but the target batch has no '
                f'labels ({MONITOR_FIELD}): set train_dataloader.dataset.'
                'target_labels=True (the target training set needs labels), '
                'or turn monitoring off')
        return labels

    @property
    def student(self) -> nn.Module:
        return getattr(self, self.student_name)

    @property
    def ignore_index(self) -> int:
        return self.student.decode_head.ignore_index

    @cached_property
    def norm_mean_std(self) -> Tuple[Sequence[float], Sequence[float]]:
        """Mean and std of the input normalisation (0-255 units, RGB); read
        once, so the training step does no host-device copy for them."""
        pre = self.data_preprocessor
        return pre.mean.flatten().tolist(), pre.std.flatten().tolist()

    def record_debug(self, **values) -> None:
        """Add ``values`` to ``debug_record`` when ``debug_wanted``: tensors
        (also in lists) cut to the first ``DEBUG_SAMPLES`` samples and
        detached, left on their device; other values as they are."""
        if not self.debug_wanted:
            return
        if self.debug_record is None:
            self.debug_record = {}
        self.debug_record.update(
            {key: _debug_value(value) for key, value in values.items()})

    def teacher_autocast(self, inputs: Tensor):
        """Context of the teachers' forward passes: autocast off with
        ``teacher_precision='fp32'`` (the inputs are fp32), else unchanged."""
        if getattr(self, 'teacher_precision', 'amp') == 'fp32':
            return torch.autocast(inputs.device.type, enabled=False)
        return contextlib.nullcontext()

    def student_logits(self, inputs: Tensor) -> Tensor:
        """Student logits at decoder resolution, with gradients."""
        return self.student.decode_head(self.student.extract_feat(inputs))

    def ce_loss(self, logits: Tensor, labels: Tensor,
                weight: Optional[Tensor] = None) -> Tensor:
        return weighted_cross_entropy(
            logits, labels, weight, ignore_index=self.ignore_index,
            avg_non_ignore=self.avg_non_ignore)

    def source_loss(self, source: dict) -> Tensor:
        """CE of the student on the labelled source batch."""
        labels = stack_labels(source['data_samples'])
        return self.ce_loss(self.student_logits(source['inputs']), labels)

    def forward(self, inputs: Optional[Tensor] = None,
                data_samples: Optional[SampleList] = None,
                mode: str = 'tensor', source: Optional[dict] = None,
                target: Optional[dict] = None):
        if mode == 'loss':
            if source is None or target is None:
                raise ValueError(
                    f'{type(self).__name__} trains on dict(source=..., '
                    'target=...) batches: use a UDADataset for training.')
            return self.loss(source, target)
        if mode == 'predict':
            return self.student.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student._forward(inputs, data_samples)
        raise ValueError(f'unknown mode {mode!r}')
