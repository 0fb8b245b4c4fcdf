"""DeepLabV2 heads: the DDB reduced adapter head and the vanilla classifier.

Parameter names follow the original's checkpoints (``aspp_modules.{i}.conv``,
``aspp_modules.{i}.bn``, ``bottleneck.conv``, ``bottleneck.bn``, ``conv_seg``)
so that released weights load after stripping their prefix (METHOD.md 2.1).
"""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor

HeadOutput = Union[Tensor, Tuple[Tensor, Tensor]]


@MODELS.register_module()
class DLV2AdapterHead(BaseDecodeHead):
    """DDB's reduced DeepLabV2 head ("dlv2red-adapter").

    layer4 -> two 3x3 ASPP branches (dilations 6, 12; conv-BN-ReLU, 128 ch.
    each) -> concat (256) -> 3x3 bottleneck conv-BN-ReLU (``channels``) ->
    Dropout2d -> 1x1 classifier. The post-bottleneck feature is what the
    prototypes of Stage 2 are computed on.

    Args:
        dilations (Sequence[int]): ASPP dilations. Default: (6, 12).
        aspp_channels (int): Channels of each ASPP branch. Default: 128.
        init_cfg (dict): Default: N(0, 0.01) over every ASPP weight, BN gammas
            included, as mmcv's ``override`` applied it in the original. The
            bottleneck keeps ConvModule's Kaiming init and ``conv_seg`` the
            PyTorch default.
        **kwargs: :class:`BaseDecodeHead` arguments (``channels`` is the
            bottleneck / feature width, 256 in DDB).
    """

    def __init__(self,
                 dilations: Sequence[int] = (6, 12),
                 aspp_channels: int = 128,
                 init_cfg=dict(
                     type='Normal', std=0.01,
                     override=dict(name='aspp_modules')),
                 **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        self.dilations = tuple(dilations)
        # A plain nn.ModuleList: mmengine's ModuleList would re-run the
        # ConvModules' own init after the N(0, 0.01) override.
        self.aspp_modules = nn.ModuleList([
            ConvModule(self.in_channels, aspp_channels, 3, padding=d,
                       dilation=d, conv_cfg=self.conv_cfg,
                       norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
            for d in self.dilations
        ])
        self.bottleneck = ConvModule(
            aspp_channels * len(self.dilations), self.channels, 3, padding=1,
            conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)

    @property
    def feature_dim(self) -> int:
        """Width of the feature returned with ``return_feature=True``."""
        return self.channels

    def _forward_feature(self, inputs: List[Tensor]) -> Tensor:
        x = self._transform_inputs(inputs)
        x = torch.cat([aspp(x) for aspp in self.aspp_modules], dim=1)
        return self.bottleneck(x)

    def forward(self, inputs: List[Tensor],
                return_feature: bool = False) -> HeadOutput:
        """Logits [B, K, h, w], and the feature [B, channels, h, w] if asked."""
        feature = self._forward_feature(inputs)
        logits = self.cls_seg(feature)
        return (logits, feature) if return_feature else logits


@MODELS.register_module()
class DLV2Head(BaseDecodeHead):
    """The vanilla DeepLabV2 classifier: summed 3x3 convs to the classes.

    Four dilated 3x3 convolutions (6, 12, 18, 24) from layer4 straight to
    ``num_classes`` channels, with bias, summed. There is no ``conv_seg``;
    the feature it can return is the layer4 input itself.
    """

    def __init__(self,
                 dilations: Sequence[int] = (6, 12, 18, 24),
                 init_cfg=dict(
                     type='Normal', std=0.01,
                     override=dict(name='aspp_modules')),
                 **kwargs):
        kwargs.setdefault('channels', 1)  # unused: no bottleneck
        kwargs.setdefault('dropout_ratio', 0)
        super().__init__(init_cfg=init_cfg, **kwargs)
        del self.conv_seg  # the ASPP convs are the classifier
        self.dilations = tuple(dilations)
        self.aspp_modules = nn.ModuleList([
            nn.Conv2d(self.in_channels, self.out_channels, 3, padding=d,
                      dilation=d, bias=True) for d in self.dilations
        ])

    @property
    def feature_dim(self) -> int:
        return self.in_channels

    def forward(self, inputs: List[Tensor],
                return_feature: bool = False) -> HeadOutput:
        x = self._transform_inputs(inputs)
        logits = sum(conv(x) for conv in self.aspp_modules)
        return (logits, x) if return_feature else logits
