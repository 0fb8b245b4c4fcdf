"""Stage 1 of DDB: self-training along one bridging path (METHOD.md 2.3)."""
from typing import Dict, Optional

import torch
from mmseg.registry import MODELS
from mmseg.utils import ConfigType
from torch import Tensor, nn

from ...utils import load_model_weights
from ...utils.prototype_file import existing_path
from .bridging import MASK_KINDS, make_mask, mix, photometric_augment
from .monitor import monitor_self_training
from .teacher import (
    check_pseudo_weight,
    confidence_weight,
    ema_alpha,
    ema_update_,
    mixed_label_and_weight,
    pseudo_label_and_confidence,
    pseudo_label_and_weight,
)
from .uda_segmentor import (
    UDASegmentor,
    augmentation_args,
    build_segmentor,
    check_teacher_precision,
    stack_labels,
)

TEACHER_BN_MODES = ('train', 'eval')


def set_teacher_mode(model: nn.Module, bn_mode: str) -> None:
    """Dropout (and DropPath) off; BN in train mode as the original
    (``'train'``: batch statistics of the target batch, METHOD.md 6.3) or
    in eval mode (``'eval'``: running statistics)."""
    model.train(bn_mode == 'train')
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd) or \
                type(m).__name__ == 'DropPath':
            m.eval()


@MODELS.register_module()
class SelfTraining(UDASegmentor):
    """Dual-path self-training: one class, the path chosen by ``mask``.

    Per iteration: EMA update -> source CE -> EMA teacher labels the clean
    target -> bridging mask from the source labels (``cut``: region path,
    ``class``: class path) -> mixed image, label and pixel weight ->
    colour jitter + blur of the mixed image -> weighted CE -> one step.

    Args:
        segmentor (dict): Student config; the EMA teacher is a copy.
        mask (str): ``'cut'`` (region path, cut-mix), ``'class'`` (class
            path, class-mix) or ``'none'`` (an ablation, not DDB: no
            bridging, the student trains on the augmented target image with
            the pseudo-labels, beside the source loss).
        alpha (float): Maximum EMA weight, ``min(1 - 1/(i+1), alpha)``.
        pseudo_threshold (float): Confidence threshold of the pseudo-labels.
        pseudo_weight (str): ``'batch_ratio'`` (original): the share of the
            batch's pixels above the threshold is one weight on every target
            pixel (METHOD.md 6.2); ``'pixel'``: target pixels above the
            threshold weigh 1, the others 0.
        teacher_bn (str): ``'train'`` (original) or ``'eval'`` (the EMA's BN
            uses running statistics, which then follow the student's by EMA).
        cut_area (float): Box area fraction of the cut mask.
        jitter_prob, jitter_strength, blur_prob, sigma_range: Photometric
            augmentation of the mixed image (METHOD.md 2.2).
        blur_mode (str): ``'horizontal'`` reproduces the original's 1xK blur
            (METHOD.md 6.1); ``'2d'`` is the intended KxK blur.
        distilled_model_path (str, optional): Round 2: initialise the student
            and the EMA from this checkpoint's student (a CKD checkpoint's
            ``stu_model.*``, or a plain/ST checkpoint).
        teacher_precision (str): ``'amp'`` (default): under ``--amp`` the EMA
            teacher labels in the autocast dtype; ``'fp32'``: in fp32
            (:data:`TEACHER_PRECISIONS`).
        avg_non_ignore (bool): See :class:`UDASegmentor`.
        monitor_pseudo_labels (bool): Score the EMA teacher's pseudo-labels
            against the target's own labels (``models/uda/monitor.py``;
            needs ``UDADataset(target_labels=True)``). Never in a loss.
            Logs ``pl_teacher_{acc,miou}`` (all labelled pixels),
            ``pl_teacher_confident_{acc,miou}`` (those at or above
            ``pseudo_threshold``) and ``pl_confident_share``.

    Debug record (only when ``debug_wanted``, see :class:`UDASegmentor`):
    ``stage='st'``, ``source_image``, ``target_image`` and ``mixed_image``
    (normalised inputs [n, 3, H, W], the mixed one after its augmentation),
    ``source_label``, ``pseudo_label`` and ``mixed_label`` [n, H, W] (the
    label the student trained on), ``confidence`` (the teacher's maximum
    probability [n, H, W]), ``quality`` (0-dim), ``mask`` (bridging mask, 1 =
    source pixel) and ``student_logits`` on the mixed image [n, C, h, w].
    """

    def __init__(self,
                 segmentor: ConfigType,
                 mask: str = 'cut',
                 alpha: float = 0.99,
                 pseudo_threshold: float = 0.968,
                 pseudo_weight: str = 'batch_ratio',
                 teacher_bn: str = 'train',
                 cut_area: float = 0.4,
                 jitter_prob: float = 0.8,
                 jitter_strength: float = 0.2,
                 blur_prob: float = 0.5,
                 sigma_range=(0.15, 1.15),
                 blur_mode: str = 'horizontal',
                 distilled_model_path: Optional[str] = None,
                 teacher_precision: str = 'amp',
                 avg_non_ignore: bool = False,
                 monitor_pseudo_labels: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(segmentor, avg_non_ignore, data_preprocessor,
                         init_cfg, monitor_pseudo_labels)
        for name, value, valid in (('mask', mask, MASK_KINDS),
                                   ('teacher_bn', teacher_bn,
                                    TEACHER_BN_MODES)):
            if value not in valid:
                raise ValueError(f'SelfTraining: {name}={value!r}; expected '
                                 f'one of {valid}')
        check_pseudo_weight(pseudo_weight, 'SelfTraining')
        self.mask = mask
        self.alpha = alpha
        self.pseudo_threshold = pseudo_threshold
        self.pseudo_weight = pseudo_weight
        self.teacher_bn = teacher_bn
        self.cut_area = cut_area
        self.aug = augmentation_args(jitter_prob, jitter_strength, blur_prob,
                                     sigma_range, blur_mode)
        self.distilled_model_path = distilled_model_path
        self.teacher_precision = check_teacher_precision(teacher_precision,
                                                         'SelfTraining')
        self.model = build_segmentor(segmentor)
        self.ema_model = build_segmentor(segmentor, frozen=True)
        self.build_monitor(pseudo_threshold)
        # iterations done; saved with the weights so a resumed run continues
        # the EMA schedule instead of re-initialising it (METHOD.md 6.11)
        self.local_iter = 0

    # -- state -------------------------------------------------------------
    def get_extra_state(self) -> Tensor:
        # a plain tensor: mmengine broadcasts the state dict across ranks
        return torch.tensor(self.local_iter)

    def set_extra_state(self, state) -> None:
        self.local_iter = int(state)

    def init_weights(self):
        """ImageNet (or config) init, then the round-2 distilled student if
        given; the EMA starts as a copy of the student."""
        super().init_weights()
        if self.distilled_model_path:
            # a file named as the original README says is found too
            load_model_weights(self.model,
                               existing_path(self.distilled_model_path),
                               prefixes=('stu_model.', 'model.'))
        self._copy_student_to_ema()

    @torch.no_grad()
    def _copy_student_to_ema(self) -> None:
        for ema, p in zip(self.ema_model.parameters(),
                          self.model.parameters()):
            ema.copy_(p)
        if self.teacher_bn == 'eval' or self.distilled_model_path:
            for ema, b in zip(self.ema_model.buffers(),
                              self.model.buffers()):
                ema.copy_(b)

    def _ema_tensors(self):
        """(EMA, student) tensors the EMA averages: parameters, plus the BN
        running statistics when the teacher's BN runs in eval mode."""
        ema = list(self.ema_model.parameters())
        src = list(self.model.parameters())
        if self.teacher_bn == 'eval':
            ema += [b for b in self.ema_model.buffers()
                    if b.is_floating_point()]
            src += [b for b in self.model.buffers() if b.is_floating_point()]
        return ema, src

    @torch.no_grad()
    def update_ema(self, iteration: int) -> None:
        """``theta_ema <- a * theta_ema + (1 - a) * theta`` with
        ``a = ema_alpha(iteration, alpha)`` (METHOD.md 2.3 step 1)."""
        ema_update_(*self._ema_tensors(), ema_alpha(iteration, self.alpha))

    # -- the step (METHOD.md 2.3) --------------------------------------------
    @torch.no_grad()
    def teacher_logits(self, target_inputs: Tensor) -> Tensor:
        """The EMA teacher's logits on the clean target, at input size."""
        set_teacher_mode(self.ema_model, self.teacher_bn)
        with self.teacher_autocast(target_inputs):
            logits = self.ema_model.encode_decode(
                target_inputs, [dict(img_shape=target_inputs.shape[2:])] *
                target_inputs.shape[0])
        if self.debug_wanted:
            self.record_debug(confidence=logits.softmax(dim=1).amax(dim=1))
        return logits

    @torch.no_grad()
    def pseudo_label(self, target_inputs: Tensor):
        """EMA teacher's hard label and its weight on the target (a batch
        scalar or per-pixel, by ``pseudo_weight``)."""
        return pseudo_label_and_weight(self.teacher_logits(target_inputs),
                                       self.pseudo_threshold,
                                       self.pseudo_weight)

    def bridge(self, source: dict, target_inputs: Tensor,
               pseudo_labels: Tensor, quality: Tensor):
        """Mixed image (augmented), label and pixel weight."""
        src_labels = stack_labels(source['data_samples'])
        mask = make_mask(self.mask, src_labels, area_ratio=self.cut_area)
        self.record_debug(source_label=src_labels, mask=mask)
        mixed = mix(mask, source['inputs'], target_inputs)
        mean, std = self.norm_mean_std
        mixed = photometric_augment(mixed, mean, std, **self.aug)
        labels, weight = mixed_label_and_weight(mask, src_labels,
                                                pseudo_labels, quality)
        return mixed, labels, weight

    def loss(self, source: dict, target: dict) -> Dict[str, Tensor]:
        if self.local_iter > 0:
            self.update_ema(self.local_iter)
        loss_src = self.source_loss(source)
        # pseudo_label(), keeping the confidence for the monitor
        pseudo, confidence = pseudo_label_and_confidence(
            self.teacher_logits(target['inputs']))
        quality = confidence_weight(confidence, self.pseudo_threshold,
                                    self.pseudo_weight)
        monitored = {}
        truth = self.monitor_labels(target)
        if truth is not None:
            monitored = monitor_self_training(
                self.pl_monitor, confidence, pseudo, truth,
                self.pseudo_threshold)
        mixed, labels, weight = self.bridge(source, target['inputs'], pseudo,
                                            quality)
        student_logits = self.student_logits(mixed)
        loss_mix = self.ce_loss(student_logits, labels, weight)
        self.record_debug(stage='st', source_image=source['inputs'],
                          target_image=target['inputs'], pseudo_label=pseudo,
                          quality=quality, mixed_image=mixed,
                          mixed_label=labels, student_logits=student_logits)
        self.local_iter += 1
        # the share of confident target pixels (the weight itself in the
        # original's batch_ratio mode)
        return dict(loss_src=loss_src, loss_mix=loss_mix,
                    pseudo_quality=quality.detach().mean(), **monitored)
