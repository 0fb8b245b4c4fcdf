# The generic pretraining of the synthetic demo (pretrain_synthetic.py) for
# the tiny DINOv2-style ViT variant: 7 categories on the generic look; only its
# backbone initialises the stages.
_base_ = [
    '../_base_/models/daformer_vit-tiny.py',
    '../_base_/datasets/synthetic_pretrain.py',
    '../_base_/synthetic_runtime.py',
]
pretrain_iters = 2000
model = dict(decode_head=dict(num_classes=7))
param_scheduler = [_base_.param_scheduler[0],
                   dict(_base_.param_scheduler[1], end=pretrain_iters)]
train_cfg = dict(max_iters=pretrain_iters, val_interval=pretrain_iters)
val_cfg = None
test_cfg = None
default_hooks = dict(checkpoint=dict(interval=pretrain_iters))
