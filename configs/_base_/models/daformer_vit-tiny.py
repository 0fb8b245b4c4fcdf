# A CPU-sized DINOv2-style ViT variant of the synthetic demo and the tests:
# the structure of daformer_dinov2-b.py (patch 14, LayerScale, four blocks
# into the multi-level neck and the DAFormer-style head), 32 channels wide.
_base_ = ['./daformer_dinov2-b.py']
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (128, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(embed_dims=32, depth=4, num_heads=2,
                  out_indices=(0, 1, 2, 3), pretrain_size=126,
                  drop_path_rate=0.0),
    neck=dict(in_channels=[32, 32, 32, 32], out_channels=32),
    decode_head=dict(in_channels=[32, 32, 32, 32], embed_dims=32,
                     channels=32, norm_cfg=norm_cfg))
