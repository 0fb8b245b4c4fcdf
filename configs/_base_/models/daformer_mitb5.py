# SegFormer MiT-B5 (mmseg's MixVisionTransformer) with a DAFormer-style fusion
# head (issue 15): per-level embeddings of the four stages (64/128/320/512 ch.,
# strides 4-32) upsampled to 1/4, concatenated, fused by depthwise-separable
# ASPP-style branches (dilations 1, 6, 12, 18) and a 3x3 bottleneck; the
# 256-d fused feature is what the prototypes use.
norm_cfg = dict(type='SyncBN', requires_grad=True)  # BN when not distributed
crop_size = (512, 512)
data_preprocessor = dict(
    type='DDBDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='DDBEncoderDecoder',
    data_preprocessor=data_preprocessor,
    # ImageNet init (mmseg's converted MiT-B5), downloaded on first use;
    # offline: --cfg-options model.pretrained=checkpoints/mit_b5.pth
    pretrained='https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/'
               'segformer/mit_b5_20220624-658746d9.pth',
    backbone=dict(
        type='MixVisionTransformer',
        in_channels=3,
        embed_dims=64,
        num_stages=4,
        num_layers=[3, 6, 40, 3],
        num_heads=[1, 2, 5, 8],
        patch_sizes=[7, 3, 3, 3],
        strides=[4, 2, 2, 2],
        sr_ratios=[8, 4, 2, 1],
        out_indices=(0, 1, 2, 3),
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1),
    decode_head=dict(
        type='DAFormerHead',
        in_channels=[64, 128, 320, 512],
        in_index=[0, 1, 2, 3],
        embed_dims=256,
        dilations=(1, 6, 12, 18),
        channels=256,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
