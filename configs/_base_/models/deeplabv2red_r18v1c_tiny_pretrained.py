# The CPU-sized DDB network of the synthetic demo, as every fresh model of the
# demo starts: from the backbone of the generic pretraining
# (configs/synthetic/pretrain_synthetic.py), as the real configs start from
# ImageNet weights: the backbone only, the head random.
# tools/ddb_pipeline.py wires the checkpoint of its own pretraining stage.
_base_ = ['./deeplabv2red_r18v1c_tiny.py']
model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained',
    checkpoint='work_dirs/pretrain_synthetic/iter_2000.pth',
    prefix='backbone.')))
