# Generic pretraining of the synthetic demo, standing in for ImageNet: the
# demo network learns the 7 Cityscapes categories (flat, construction, object,
# nature, sky, human, vehicle) on a third look whose colours are random per
# class and image, so it learns shapes and context but neither the 19
# classes nor either domain's colours. Only its backbone initialises the
# stages (configs/_base_/models/deeplabv2red_r18v1c_tiny_pretrained.py). Run once
# per machine by tools/ddb_pipeline.py; CPU, a few minutes.
_base_ = [
    '../_base_/models/deeplabv2red_r18v1c_tiny.py',
    '../_base_/datasets/synthetic_pretrain.py',
    '../_base_/synthetic_runtime.py',
]
pretrain_iters = 2000
model = dict(decode_head=dict(num_classes=7))
# the stages' warmup + poly schedule, stretched to the pretraining's length
param_scheduler = [_base_.param_scheduler[0],
                   dict(_base_.param_scheduler[1], end=pretrain_iters)]
train_cfg = dict(max_iters=pretrain_iters, val_interval=pretrain_iters)
val_cfg = None
test_cfg = None
default_hooks = dict(checkpoint=dict(interval=pretrain_iters))
