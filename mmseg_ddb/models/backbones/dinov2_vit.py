"""A DINOv2 vision transformer (ViT-B/14, ViT-L/14) as a multi-level backbone.

The module layout and parameter names are those of the DINOv2 release and of
timm's ``vit_{base,large}_patch14_dinov2`` (``patch_embed.proj``,
``cls_token``, ``pos_embed``, ``blocks.{i}.{norm1,attn.qkv,attn.proj,ls1.gamma,
norm2,mlp.fc1,mlp.fc2,ls2.gamma}``, ``norm``), so either file loads as it is:
Meta's ``dinov2_vitb14_pretrain.pth`` or a timm model's ``state_dict()``
saved with ``torch.save``. timm itself is not imported: its import needs a
torchvision built for the installed torch, which CPU-only installs lack.
"""
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmengine.runner import CheckpointLoader
from mmseg.registry import MODELS
from torch import Tensor

from ...errors import ConfigError

#: the released weights (the same tensors timm re-hosts on its hub)
DINOV2_URLS = {
    'vit-b': 'https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/'
             'dinov2_vitb14_pretrain.pth',
    'vit-l': 'https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/'
             'dinov2_vitl14_pretrain.pth',
}
#: keys of the released file that the backbone has no use for
_UNUSED_KEYS = ('mask_token', 'register_tokens', 'head.')


class LayerScale(nn.Module):
    """Per-channel scale of a residual branch (``gamma``, as released)."""

    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init_value))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """Two linear layers with a GELU between (``fc1``, ``fc2``)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale and DropPath."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float,
                 init_scale: float, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim, init_scale)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_scale)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


class PatchEmbed(nn.Module):
    """Non-overlapping patches to tokens: one strided convolution (``proj``)."""

    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


@MODELS.register_module()
class DINOv2ViT(BaseModule):
    """DINOv2 ViT that returns the patch tokens of chosen blocks as maps.

    An image whose sides are not multiples of ``patch_size`` is resized
    bilinearly to the next multiples (512 -> 518), so that the patch grid
    covers it exactly and logits resized back line up with the pixels. The
    position embedding (trained on a ``pretrain_size`` grid) is resized
    bicubically to the grid of the input.

    Args:
        arch (str): 'vit-b' (768 wide, 12 blocks, 12 heads) or 'vit-l'
            (1024, 24, 16).
        embed_dims, depth, num_heads (int, optional): Override the arch's
            (the tests' tiny ViT).
        out_indices (Sequence[int]): Blocks whose outputs are returned,
            each [B, C, H/14, W/14], after the final LayerNorm as DINOv2's
            ``get_intermediate_layers`` does.
        patch_size (int): Default 14.
        pretrain_size (int): Image size of the position embedding (518).
        mlp_ratio (float): Default 4.
        init_scale (float): LayerScale init of a model trained from scratch.
        drop_path_rate (float): Stochastic depth, linear over the blocks.
        pretrained (str, optional): Weights file or URL (DINOv2 release,
            or a timm ``vit_*_patch14_dinov2`` state dict). ``init_cfg =
            dict(type='Pretrained', checkpoint=...)`` is the same.
    """

    ARCHS = {'vit-b': dict(embed_dims=768, depth=12, num_heads=12),
             'vit-l': dict(embed_dims=1024, depth=24, num_heads=16)}

    def __init__(self, arch: str = 'vit-b', embed_dims: Optional[int] = None,
                 depth: Optional[int] = None, num_heads: Optional[int] = None,
                 out_indices: Sequence[int] = (2, 5, 8, 11),
                 patch_size: int = 14, pretrain_size: int = 518,
                 mlp_ratio: float = 4.0, init_scale: float = 1e-5,
                 drop_path_rate: float = 0.0, pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        if pretrained is not None:
            if init_cfg is not None:
                raise ConfigError('DINOv2ViT: set pretrained or init_cfg, '
                                  'not both')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        if arch not in self.ARCHS:
            raise ConfigError(f'DINOv2ViT: arch={arch!r}, expected one of '
                              f'{sorted(self.ARCHS)}')
        spec = self.ARCHS[arch]
        dim = embed_dims or spec['embed_dims']
        depth = depth or spec['depth']
        num_heads = num_heads or spec['num_heads']
        if not all(0 <= i < depth for i in out_indices):
            raise ConfigError(f'DINOv2ViT: out_indices {tuple(out_indices)} '
                              f'must lie in [0, {depth}) for depth {depth}')
        self.out_indices = tuple(out_indices)
        self.patch_size = patch_size
        self.embed_dims = dim
        self.patch_embed = PatchEmbed(patch_size, dim)
        grid = pretrain_size // patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio, init_scale, r)
            for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    # -- weights ---------------------------------------------------------------
    def init_weights(self) -> None:
        """Random init (truncated normal), or the weights of
        ``init_cfg.checkpoint``, checked key by key."""
        checkpoint = (self.init_cfg or {}).get('checkpoint')
        if not checkpoint:
            trunc_normal_(self.pos_embed, std=0.02)
            nn.init.normal_(self.cls_token, std=1e-6)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    trunc_normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)
            return
        prefix = self.init_cfg.get('prefix')
        self.load_state_dict(self._read_weights(checkpoint, prefix))

    def _read_weights(self, checkpoint: str,
                      prefix: Optional[str] = None) -> Dict[str, Tensor]:
        hint = ('pass the file with --cfg-options model.pretrained=PATH (or '
                'model.backbone.init_cfg.checkpoint=PATH); download '
                f'{DINOV2_URLS["vit-b"]} (ViT-B/14) or the ViT-L/14 file '
                'next to it, or save timm.create_model('
                "'vit_base_patch14_dinov2', pretrained=True).state_dict() "
                'with torch.save')
        try:
            state = CheckpointLoader.load_checkpoint(checkpoint,
                                                     map_location='cpu')
        except Exception as exc:
            raise ConfigError(f'cannot load the DINOv2 weights {checkpoint} '
                              f'({type(exc).__name__}: {exc}): {hint}') from exc
        for wrapper in ('state_dict', 'model'):
            if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
                state = state[wrapper]
        if prefix:  # e.g. 'backbone.' of a whole segmentor's checkpoint
            state = {k[len(prefix):]: v for k, v in state.items()
                     if k.startswith(prefix)}
        state = {k: v for k, v in state.items()
                 if not k.startswith(_UNUSED_KEYS)}
        ours = self.state_dict()
        missing = sorted(set(ours) - set(state))
        unexpected = sorted(set(state) - set(ours))
        if missing or unexpected:
            raise ConfigError(
                f'{checkpoint} is not a DINOv2 ViT of this size: missing '
                f'{missing[:5]}, unexpected {unexpected[:5]} ({len(missing)} / '
                f'{len(unexpected)} keys); {hint}')
        pos = state['pos_embed']
        if pos.shape != ours['pos_embed'].shape:
            side = int(math.sqrt(ours['pos_embed'].shape[1] - 1))
            state['pos_embed'] = self._resize_pos_embed(pos, side, side)
        return state

    # -- forward ---------------------------------------------------------------
    @staticmethod
    def _resize_pos_embed(pos: Tensor, h: int, w: int) -> Tensor:
        """Position embedding [1, 1 + g*g, C] resized to an h x w grid."""
        cls, grid = pos[:, :1], pos[:, 1:]
        side = int(math.sqrt(grid.shape[1]))
        if (side, side) == (h, w):
            return pos
        grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid.float(), size=(h, w), mode='bicubic',
                             align_corners=False).to(pos.dtype)
        return torch.cat([cls, grid.flatten(2).transpose(1, 2)], dim=1)

    def forward(self, x: Tensor) -> List[Tensor]:
        """Images [B, 3, H, W] -> maps [B, C, ceil(H/14), ceil(W/14)] of
        the ``out_indices`` blocks."""
        p = self.patch_size
        size = (math.ceil(x.shape[2] / p) * p, math.ceil(x.shape[3] / p) * p)
        if tuple(x.shape[2:]) != size:
            x = F.interpolate(x, size=size, mode='bilinear',
                              align_corners=False)
        tokens = self.patch_embed(x)
        b, c, h, w = tokens.shape
        tokens = torch.cat([self.cls_token.expand(b, -1, -1),
                            tokens.flatten(2).transpose(1, 2)], dim=1)
        tokens = tokens + self._resize_pos_embed(self.pos_embed, h, w)
        outs = []
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i in self.out_indices:
                patch = self.norm(tokens)[:, 1:]
                outs.append(patch.transpose(1, 2).reshape(b, c, h, w))
        return outs
