# DINOv2 ViT-L/14 (24 blocks, 1024 ch.): blocks 6, 12, 18 and 24 into the same
# neck and head as ViT-B/14 (daformer_dinov2-b.py).
_base_ = ['./daformer_dinov2-b.py']
model = dict(
    # offline: --cfg-options model.pretrained=checkpoints/dinov2_vitl14_pretrain.pth
    pretrained='https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/'
               'dinov2_vitl14_pretrain.pth',
    backbone=dict(arch='vit-l', out_indices=(5, 11, 17, 23)),
    neck=dict(in_channels=[1024, 1024, 1024, 1024]))
