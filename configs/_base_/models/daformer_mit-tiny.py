# A CPU-sized MiT variant of the synthetic demo and the tests: the structure
# of daformer_mitb5.py (four MiT stages, DAFormer-style head) with one block
# per stage, 16-128 channels and a 32-d head.
_base_ = ['./daformer_mitb5.py']
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (128, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(embed_dims=16, num_layers=[1, 1, 1, 1], drop_path_rate=0.0),
    decode_head=dict(in_channels=[16, 32, 80, 128], embed_dims=32,
                     channels=32, norm_cfg=norm_cfg))
