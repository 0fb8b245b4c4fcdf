# Source-only data: GTA5 crops for training, Cityscapes val for evaluation.
_base_ = ['./gta_512x512.py', './cityscapes_512x512.py']
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=_base_.gta_train)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_base_.cityscapes_val)
test_dataloader = val_dataloader
val_evaluator = dict(type='DDBIoUMetric')
test_evaluator = val_evaluator
