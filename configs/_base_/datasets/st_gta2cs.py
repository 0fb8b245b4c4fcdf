# Self-training data: GTA5 source crops (no PMD) paired with random
# Cityscapes train crops; Cityscapes val for evaluation.
_base_ = ['./gta_512x512.py', './cityscapes_512x512.py']
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='UDADataset',
        source=_base_.gta_train,
        target=_base_.cityscapes_train,
        # labels of the target for pseudo-label monitoring only (README
        # "Watching a run"): 'gtFine/train' for the Cityscapes train split
        target_labels=False))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_base_.cityscapes_val)
test_dataloader = val_dataloader
val_evaluator = dict(type='DDBIoUMetric')
test_evaluator = val_evaluator
