"""Multi-level heads for transformer backbones (MiT, ViT + neck).

Both keep the contract of :class:`~.dlv2_head.DLV2AdapterHead`:
``forward(inputs, return_feature=True)`` returns the logits and the fused
feature before dropout and the classifier, which the prototypes of Stage 2
are computed on, and ``feature_dim`` is its width (``channels``).
"""
from typing import List, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.decode_heads.segformer_head import SegformerHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor

from .dlv2_head import HeadOutput


@MODELS.register_module()
class DAFormerHead(BaseDecodeHead):
    """A DAFormer-style context-aware fusion head (written from the paper).

    Each input level gets its own linear embedding to ``embed_dims``
    channels (a 1x1 convolution: the same as a per-token linear layer), is
    upsampled to the first level's resolution (1/4 of the image for MiT),
    and the levels are concatenated. A fusion block of parallel branches
    looks at the stack with several receptive fields: a 1x1 convolution for
    dilation 1 and a depthwise-separable 3x3 convolution for every other
    dilation (6, 12, 18), each conv-BN-ReLU to ``channels``. The branches
    are concatenated and a 3x3 conv-BN-ReLU bottleneck fuses them to
    ``channels``: that fused feature is the prototype feature; dropout and
    the 1x1 classifier follow.

    Args:
        embed_dims (int): Width of each level's embedding. Default: 256.
        dilations (Sequence[int]): Dilations of the fusion branches.
            Default: (1, 6, 12, 18).
        **kwargs: :class:`BaseDecodeHead` arguments: ``in_channels`` and
            ``in_index`` are lists (one per level), ``channels`` is the
            fusion / prototype feature width (256 in DAFormer).
    """

    def __init__(self, embed_dims: int = 256,
                 dilations: Sequence[int] = (1, 6, 12, 18), **kwargs):
        super().__init__(input_transform='multiple_select', **kwargs)
        self.dilations = tuple(dilations)
        self.embeds = nn.ModuleList(
            nn.Conv2d(c, embed_dims, 1) for c in self.in_channels)
        fused = embed_dims * len(self.in_channels)
        self.fusion_branches = nn.ModuleList(
            self._branch(fused, d) for d in self.dilations)
        self.bottleneck = ConvModule(
            self.channels * len(self.dilations), self.channels, 3, padding=1,
            conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)

    def _branch(self, in_channels: int, dilation: int) -> nn.Module:
        if dilation == 1:
            return ConvModule(in_channels, self.channels, 1,
                              conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                              act_cfg=self.act_cfg)
        return DepthwiseSeparableConvModule(
            in_channels, self.channels, 3, padding=dilation,
            dilation=dilation, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    @property
    def feature_dim(self) -> int:
        """Width of the feature returned with ``return_feature=True``."""
        return self.channels

    def _forward_feature(self, inputs: List[Tensor]) -> Tensor:
        levels = self._transform_inputs(inputs)
        size = levels[0].shape[2:]
        stack = torch.cat([
            resize(embed(x), size=size, mode='bilinear',
                   align_corners=self.align_corners)
            for embed, x in zip(self.embeds, levels)
        ], dim=1)
        branches = torch.cat([b(stack) for b in self.fusion_branches], dim=1)
        return self.bottleneck(branches)

    def forward(self, inputs: List[Tensor],
                return_feature: bool = False) -> HeadOutput:
        """Logits [B, K, h, w] at the first level's resolution, and the
        fused feature [B, channels, h, w] if asked."""
        feature = self._forward_feature(inputs)
        logits = self.cls_seg(feature)
        return (logits, feature) if return_feature else logits


@MODELS.register_module()
class DDBSegformerHead(SegformerHead):
    """mmseg's all-MLP ``SegformerHead`` (1x1 conv per level, upsample,
    concat, 1x1 fusion conv) with the DDB contract: the fused feature before
    dropout and the classifier is returned with ``return_feature=True``."""

    @property
    def feature_dim(self) -> int:
        """Width of the feature returned with ``return_feature=True``."""
        return self.channels

    def forward(self, inputs: List[Tensor],
                return_feature: bool = False) -> HeadOutput:
        """Logits [B, K, h, w], and the fused feature if asked."""
        levels = self._transform_inputs(inputs)
        size = levels[0].shape[2:]
        outs = [resize(conv(x), size=size, mode=self.interpolate_mode,
                       align_corners=self.align_corners)
                for conv, x in zip(self.convs, levels)]
        feature = self.fusion_conv(torch.cat(outs, dim=1))
        logits = self.cls_seg(feature)
        return (logits, feature) if return_feature else logits
