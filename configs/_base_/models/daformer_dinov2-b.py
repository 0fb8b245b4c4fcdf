# DINOv2 ViT-B/14 with a simple multi-level neck into the DAFormer-style head
# (issue 15): the tokens of blocks 3, 6, 9 and 12 (after the final norm), as
# 1/14 maps, go through mmseg's MultiLevelNeck (1x1 to 256 ch., resized by
# 3.5 / 1.75 / 0.875 / 0.4375 to strides 4 / 8 / 16 / 32, 3x3 conv each). A
# 512 crop is resized to 518 inside the backbone (a multiple of the patch).
_base_ = ['./daformer_mitb5.py']
model = dict(
    # DINOv2's released weights, downloaded on first use; offline:
    # --cfg-options model.pretrained=checkpoints/dinov2_vitb14_pretrain.pth
    # (Meta's file, or a timm vit_base_patch14_dinov2 state dict)
    pretrained='https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/'
               'dinov2_vitb14_pretrain.pth',
    backbone=dict(
        _delete_=True,
        type='DINOv2ViT',
        arch='vit-b',
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.1),
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[768, 768, 768, 768],
        out_channels=256,
        scales=[3.5, 1.75, 0.875, 0.4375]),
    decode_head=dict(in_channels=[256, 256, 256, 256]))
