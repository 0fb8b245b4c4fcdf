# The tiny mit network of the synthetic demo as every fresh model of the
# demo starts: from the backbone of its generic pretraining
# (configs/synthetic/pretrain_daformer_mit-tiny_synthetic.py); tools/ddb_pipeline.py
# wires the checkpoint of its own pretraining stage.
_base_ = ['./daformer_mit-tiny.py']
model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained',
    checkpoint='work_dirs/pretrain_daformer_mit-tiny_synthetic/iter_2000.pth',
    prefix='backbone.')))
