# MiT-B5 with mmseg's all-MLP SegFormer head instead of the DAFormer-style
# fusion (the simpler option of issue 15); the 256-d fused feature is the
# prototype feature.
_base_ = ['./daformer_mitb5.py']
model = dict(decode_head=dict(
    _delete_=True,
    type='DDBSegformerHead',
    in_channels=[64, 128, 320, 512],
    in_index=[0, 1, 2, 3],
    channels=256,
    dropout_ratio=0.1,
    num_classes=19,
    norm_cfg={{_base_.norm_cfg}},
    align_corners=False,
    loss_decode=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
