"""The segmentor every DDB model (student, teachers, EMA) is made of."""
from typing import List, Optional, Tuple

import torch
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from ...errors import ConfigError

_REMOTE = ('open-mmlab://', 'http://', 'https://', 'torchvision://',
           'mmcls://', 'openmmlab://')


@MODELS.register_module()
class DDBEncoderDecoder(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` with what DDB needs on top.

    * :meth:`logits_and_features`: logits and the decode head's feature (the
      256-d post-bottleneck feature of :class:`DLV2AdapterHead`) for the
      UDA steps and the prototypes.
    * :meth:`predict` resizes the **softmax** (not the logits) to the original
      label size before the argmax, as the original's ``inference`` did
      (METHOD.md section 3).

    * ``channels_last=True`` keeps the weights, and the input of the
      backbone, in channels_last (NHWC) memory format, which the GPU's
      convolution kernels for bf16 / fp16 prefer (``--channels-last`` of
      train.py and test.py). The same network; the values differ only by the
      rounding of other kernels.

    Call graph::

        loss(inputs, samples)           -> EncoderDecoder.loss (CE on source)
        logits_and_features(inputs)     -> extract_feat -> decode_head(x, True)
        predict(inputs, samples)        -> inference -> softmax -> resize -> argmax
    """

    def __init__(self, *args, channels_last: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.channels_last = channels_last
        if channels_last:
            # before any wrapper (DDP) sees the weights; checkpoint loading
            # (copy_), the optimizer state and the EMA keep the format
            self.to(memory_format=torch.channels_last)

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return super().extract_feat(inputs)

    def init_weights(self):
        """mmengine's init, with a clear message when the ImageNet weights
        cannot be fetched (offline machine) or the local file is missing.
        A channels_last model is initialised in the default format and then
        converted back, so that a seed gives the same weights in both."""
        if not self.channels_last:
            return self._init_weights()
        self.to(memory_format=torch.contiguous_format)
        try:
            self._init_weights()
        finally:
            self.to(memory_format=torch.channels_last)

    def _init_weights(self):
        init_cfg = getattr(self.backbone, 'init_cfg', None) or {}
        ckpt = init_cfg.get('checkpoint') if isinstance(init_cfg, dict) \
            else None
        try:
            super().init_weights()
        except Exception as exc:
            if not ckpt or isinstance(exc, ConfigError):
                raise
            if str(ckpt).startswith(_REMOTE):
                raise ConfigError(
                    f'could not fetch the ImageNet weights {ckpt} '
                    f'({type(exc).__name__}: {exc}). Without internet, '
                    'download them elsewhere and point the config at the '
                    'local file: --cfg-options model.pretrained=PATH '
                    '(or model.backbone.init_cfg.checkpoint=PATH).') from exc
            raise ConfigError(
                f'cannot load the backbone init {ckpt} ({type(exc).__name__}: '
                f'{exc}). Fix model.pretrained / '
                'model.backbone.init_cfg.checkpoint.') from exc

    @property
    def feature_dim(self) -> int:
        """Width of the feature returned by :meth:`logits_and_features`."""
        return self.decode_head.feature_dim

    def logits_and_features(self, inputs: Tensor,
                            size: Optional[Tuple[int, int]] = None
                            ) -> Tuple[Tensor, Tensor]:
        """Logits [B, K, h, w] and features [B, D, h, w] of a batch.

        Args:
            inputs (Tensor): Normalised images [B, 3, H, W].
            size (tuple, optional): Resize both bilinearly to this (H, W),
                e.g. ``inputs.shape[2:]``. Default: decoder resolution.
        """
        logits, features = self.decode_head(
            self.extract_feat(inputs), return_feature=True)
        if size is not None:
            align = self.align_corners
            logits = resize(logits, size=size, mode='bilinear',
                            align_corners=align)
            features = resize(features, size=size, mode='bilinear',
                              align_corners=align)
        return logits, features

    def predict(self, inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        if data_samples is not None:
            batch_img_metas = [s.metainfo for s in data_samples]
        else:
            shape = inputs.shape[2:]
            batch_img_metas = [
                dict(ori_shape=shape, img_shape=shape, pad_shape=shape,
                     padding_size=[0, 0, 0, 0])
            ] * inputs.shape[0]
        # fp32 softmax and resize, also under autocast (tools/test.py --amp)
        probs = self.inference(inputs, batch_img_metas).float().softmax(dim=1)
        return self.postprocess_result(probs, data_samples)
