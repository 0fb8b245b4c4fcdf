# Vanilla DeepLabV2: ResNetV1c-101 + summed ASPP classifier (6, 12, 18, 24).
_base_ = ['./deeplabv2red_r101v1c_adapter.py']
model = dict(
    decode_head=dict(
        _delete_=True,
        type='DLV2Head',
        in_channels=2048,
        in_index=3,
        dilations=(6, 12, 18, 24),
        num_classes=19,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
