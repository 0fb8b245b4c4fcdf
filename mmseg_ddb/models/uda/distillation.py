"""Stage 2 of DDB: cross-path knowledge distillation (METHOD.md 2.5)."""
import os.path as osp
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import ConfigType
from torch import Tensor, nn

from ...errors import CheckpointError
from ...utils import load_model_weights, load_prototypes
from ...utils.prototype_file import existing_path
from .bridging import photometric_augment
from .monitor import monitor_distillation
from .prototypes import (
    ensemble_pseudo_label,
    rectification_weights,
    rectify_logits,
    rectify_probabilities,
    soft_distillation_loss,
)
from .teacher import check_pseudo_weight, confidence_weight
from .uda_segmentor import (
    DEBUG_SAMPLES,
    UDASegmentor,
    augmentation_args,
    build_segmentor,
    check_teacher_precision,
)

STUDENT_INITS = ('imagenet', 'teacher')


@MODELS.register_module()
class CrossPathDistillation(UDASegmentor):
    """CKD: a student learns from the frozen region- and class-path teachers.

    Per iteration: source CE (the source pipeline adds
    PhotoMetricDistortion) -> each teacher labels the clean target crop ->
    its probabilities are rectified by its prototypes -> 50/50 average ->
    argmax -> CE of the student on the colour-jittered/blurred target crop.

    Args:
        segmentor (dict): Config of the student and of every teacher.
        teachers (list[dict]): One per path, e.g.
            ``dict(name='cu', checkpoint=..., prototypes=..., config=...)``:
            the ST checkpoint whose student (``model.*``) becomes the teacher,
            its prototype file, and (for error messages) the config that
            produces them.
        proto_rectify (bool): Rectify with prototypes. Default: True.
        rectify_on_prob (bool): Weights multiply the probabilities (True,
            original) or the logits (False).
        renormalize (bool): Renormalise rectified probabilities. Default:
            False, as the original (METHOD.md 6.6).
        proto_temperature (float): Temperature of the softmax over negative
            prototype distances. Default: 1.
        use_pl_weight (bool): Weight the target loss by the ensemble's
            confidence (``pseudo_threshold``, ``pseudo_weight``). Default:
            False, as the original: every target pixel weighs 1 (METHOD.md
            2.5, 6.2).
        pseudo_threshold (float): Threshold on the ensemble's maximum
            (rectified, averaged) probability; used only with
            ``use_pl_weight``.
        pseudo_weight (str): ``'batch_ratio'`` (the share of confident pixels
            as one weight per batch, as in Stage 1) or ``'pixel'`` (confident
            pixels 1, the others 0); used only with ``use_pl_weight``.
        soft_distill (bool): Add the soft KL term of METHOD.md 2.5.
        soft_distill_w (float): Its weight (0.1).
        soft_temperature (float): Its temperature (1).
        student_init (str): ``'imagenet'`` (original: the config's init) or
            ``'teacher'`` (start from the first teacher's weights).
        jitter_prob, jitter_strength, blur_prob, sigma_range, blur_mode:
            Augmentation of the student's target crop (as in Stage 1).
        teacher_precision (str): ``'amp'`` (default): under ``--amp`` the
            teachers' logits and features (hence the prototype distances)
            come from the autocast dtype; ``'fp32'``: from fp32.
        avg_non_ignore (bool): See :class:`UDASegmentor`.
        monitor_pseudo_labels (bool): Score the teachers' labels against the
            target's own labels (``models/uda/monitor.py``; needs
            ``UDADataset(target_labels=True)``). Never in a loss. Logs
            ``pl_<teacher name>_{acc,miou}`` (each teacher's own argmax),
            ``pl_plain_{acc,miou}`` (the ensemble without rectification)
            and ``pl_rectified_{acc,miou}`` (the label the student trains
            on).

    Debug record (only when ``debug_wanted``, see :class:`UDASegmentor`):
    ``stage='ckd'``, ``target_image`` and ``augmented_image`` (normalised
    inputs [n, 3, H, W]: the clean crop the teachers see, the jittered one
    the student sees), ``teacher_names``, per teacher ``teacher_labels``
    (argmax of its own logits [n, H, W]) and ``teacher_weights`` (its
    rectification weight of that class [n, H, W]; 1 without rectification),
    ``label_before`` (the ensemble label without rectification), ``label``
    (the one the student trained on) and ``student_logits`` [n, C, h, w].
    """

    student_name = 'stu_model'

    def __init__(self,
                 segmentor: ConfigType,
                 teachers: Sequence[dict] = (),
                 proto_rectify: bool = True,
                 rectify_on_prob: bool = True,
                 renormalize: bool = False,
                 proto_temperature: float = 1.0,
                 use_pl_weight: bool = False,
                 pseudo_threshold: float = 0.968,
                 pseudo_weight: str = 'batch_ratio',
                 soft_distill: bool = False,
                 soft_distill_w: float = 0.1,
                 soft_temperature: float = 1.0,
                 student_init: str = 'imagenet',
                 jitter_prob: float = 0.8,
                 jitter_strength: float = 0.2,
                 blur_prob: float = 0.5,
                 sigma_range=(0.15, 1.15),
                 blur_mode: str = 'horizontal',
                 teacher_precision: str = 'amp',
                 avg_non_ignore: bool = False,
                 monitor_pseudo_labels: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(segmentor, avg_non_ignore, data_preprocessor,
                         init_cfg, monitor_pseudo_labels)
        if not teachers:
            raise ValueError('CrossPathDistillation needs at least one '
                             'teacher (uda.teachers)')
        if student_init not in STUDENT_INITS:
            raise ValueError(f'student_init={student_init!r}; expected one '
                             f'of {STUDENT_INITS}')
        check_pseudo_weight(pseudo_weight, 'CrossPathDistillation')
        self.teacher_specs = [dict(t) for t in teachers]
        self.proto_rectify = proto_rectify
        self.rectify_on_prob = rectify_on_prob
        self.renormalize = renormalize
        self.proto_temperature = proto_temperature
        self.use_pl_weight = use_pl_weight
        self.pseudo_threshold = pseudo_threshold
        self.pseudo_weight = pseudo_weight
        self.soft_distill = soft_distill
        self.soft_distill_w = soft_distill_w
        self.soft_temperature = soft_temperature
        self.student_init = student_init
        self.teacher_precision = check_teacher_precision(
            teacher_precision, 'CrossPathDistillation')
        self.aug = augmentation_args(jitter_prob, jitter_strength, blur_prob,
                                     sigma_range, blur_mode)
        self.stu_model = build_segmentor(segmentor)
        self.teachers = nn.ModuleList(
            build_segmentor(segmentor, frozen=True) for _ in teachers)
        num_classes = self.stu_model.decode_head.num_classes
        dim = self.stu_model.feature_dim
        # saved with the checkpoint, so a resumed run uses the same ones
        self.register_buffer(
            'prototypes', torch.zeros(len(teachers), num_classes, dim))
        self.build_monitor()

    @property
    def teacher_names(self):
        return [str(spec.get('name', i)) for i, spec in
                enumerate(self.teacher_specs)]

    def train(self, mode: bool = True):
        """Teachers stay in eval mode (running BN statistics)."""
        super().train(mode)
        self.teachers.eval()
        return self

    def init_weights(self):
        """Student from the config's init (ImageNet) or a teacher; teachers
        and prototypes from their files, checked against the model."""
        super().init_weights()
        num_classes, dim = self.prototypes.shape[1:]
        for i, (spec, teacher) in enumerate(
                zip(self.teacher_specs, self.teachers)):
            # a file named as the original README says is found too
            path = existing_path(spec.get('checkpoint'))
            hint = (f'train it with `python tools/train.py {spec["config"]}`'
                    if spec.get('config') else 'train the ST stage first')
            if not path or not osp.isfile(path):
                raise CheckpointError(
                    f'teacher {spec.get("name", i)!r}: checkpoint {path!r} '
                    f'not found; {hint}, or set uda.teachers.{i}.checkpoint')
            load_model_weights(teacher, path, prefixes=('model.',
                                                        'stu_model.'))
            if self.proto_rectify:
                protos = load_prototypes(
                    existing_path(spec.get('prototypes')), num_classes, dim,
                    produced_by=(
                        f'python tools/cal_prototypes/cal_prototype.py '
                        f'{spec["config"]} {path} --out '
                        f'{spec.get("prototypes")}'
                        if spec.get('config') else None))
                self.prototypes[i].copy_(protos)
        if self.student_init == 'teacher':
            self.stu_model.load_state_dict(self.teachers[0].state_dict())
        self.teachers.eval()

    @torch.no_grad()
    def teacher_outputs(self, inputs: Tensor, keep_softmax: bool = False):
        """Each teacher's logits and (rectified) probabilities on the clean
        target, at input resolution (METHOD.md 2.5 step 2), and its
        rectification weights; with ``keep_softmax`` also each teacher's
        plain softmax (the one rectification multiplies, reused)."""
        size = inputs.shape[2:]
        logits_list, probs_list, weights_list, softmax_list = [], [], [], []
        for teacher, protos in zip(self.teachers, self.prototypes):
            # features stay at the decoder's resolution: the weights of
            # the features upsampled to the crop are computed without
            # materialising them (rectification_weights(size=...))
            with self.teacher_autocast(inputs):
                logits, feats = teacher.logits_and_features(inputs)
            logits = F.interpolate(logits.float(), size=size,
                                   mode='bilinear',
                                   align_corners=teacher.align_corners)
            softmax = None
            if self.proto_rectify:
                weights = rectification_weights(
                    feats, protos, self.proto_temperature, size=size,
                    align_corners=teacher.align_corners)
                if self.rectify_on_prob:
                    softmax = logits.softmax(dim=1)
                    probs = rectify_probabilities(softmax, weights,
                                                  self.renormalize)
                else:
                    probs = rectify_logits(logits, weights).softmax(dim=1)
            else:
                weights = torch.ones_like(logits)
                probs = softmax = logits.softmax(dim=1)
            logits_list.append(logits)
            probs_list.append(probs)
            weights_list.append(weights)
            if keep_softmax:
                softmax_list.append(logits.softmax(dim=1) if softmax is None
                                    else softmax)
        if keep_softmax:
            return logits_list, probs_list, weights_list, softmax_list
        return logits_list, probs_list, weights_list

    @torch.no_grad()
    def debug_teachers(self, logits_list, weights_list) -> dict:
        """The teachers' part of the debug record (see the class docstring),
        computed on the first ``DEBUG_SAMPLES`` samples only."""
        logits_list = [z[:DEBUG_SAMPLES] for z in logits_list]
        labels = [z.argmax(dim=1) for z in logits_list]
        weights = [w[:DEBUG_SAMPLES].gather(1, y[:, None])[:, 0]
                   for w, y in zip(weights_list, labels)]
        before, _ = ensemble_pseudo_label([z.softmax(dim=1)
                                           for z in logits_list])
        return dict(teacher_labels=labels, teacher_weights=weights,
                    label_before=before)

    def loss(self, source: dict, target: dict) -> Dict[str, Tensor]:
        loss_src = self.source_loss(source)
        target_inputs = target['inputs']
        truth = self.monitor_labels(target)
        t_logits, t_probs, t_weights, *t_softmax = self.teacher_outputs(
            target_inputs, keep_softmax=truth is not None)
        labels, mean_probs = ensemble_pseudo_label(t_probs)
        monitored = {}
        if truth is not None:
            monitored = monitor_distillation(
                self.pl_monitor, self.teacher_names, t_logits, t_softmax[0],
                labels, truth)
        weight = None
        if self.use_pl_weight:
            weight = confidence_weight(mean_probs.max(dim=1)[0],
                                       self.pseudo_threshold,
                                       self.pseudo_weight)
        mean, std = self.norm_mean_std
        augmented = photometric_augment(target_inputs, mean, std, **self.aug)
        student_logits = self.student_logits(augmented)
        losses = dict(loss_src=loss_src,
                      loss_tgt=self.ce_loss(student_logits, labels, weight),
                      **monitored)
        if weight is not None:
            losses['pseudo_quality'] = weight.detach().mean()
        if self.debug_wanted:
            self.record_debug(
                stage='ckd', target_image=target_inputs,
                augmented_image=augmented, label=labels,
                student_logits=student_logits,
                teacher_names=self.teacher_names,
                **self.debug_teachers(t_logits, t_weights))
        if self.soft_distill:
            up = F.interpolate(student_logits, size=labels.shape[1:],
                               mode='bilinear', align_corners=False)
            losses['loss_soft'] = soft_distillation_loss(
                up, t_logits, t_weights, self.soft_temperature,
                self.soft_distill_w)
        return losses
