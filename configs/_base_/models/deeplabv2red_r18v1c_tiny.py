# A CPU-sized DDB network for the synthetic domain shift and the tests:
# ResNetV1c-18 with 16 stem/base channels (layer4: 128 ch.) and the reduced
# adapter head at a quarter of its width. Same structure as the R101 model.
_base_ = ['./deeplabv2red_r101v1c_adapter.py']
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (128, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16,
                  norm_cfg=norm_cfg),
    decode_head=dict(in_channels=128, aspp_channels=32, channels=64,
                     norm_cfg=norm_cfg))
