# DeepLabV2 with DDB's reduced adapter head on ResNetV1c-101 (METHOD.md 2.1).
norm_cfg = dict(type='SyncBN', requires_grad=True)  # BN when not distributed
crop_size = (512, 512)
# mmseg's SegDataPreProcessor, copying to the GPU without blocking
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
    # ImageNet init, downloaded on first use; offline, point it at a local
    # file: --cfg-options model.pretrained=checkpoints/resnet101_v1c.pth
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='DLV2AdapterHead',
        in_channels=2048,
        in_index=3,
        dilations=(6, 12),
        aspp_channels=128,
        channels=256,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
