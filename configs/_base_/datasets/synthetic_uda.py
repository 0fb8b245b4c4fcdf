# Synthetic domain shift, UDA stages: source crops paired with random target
# crops; target-look val images for evaluation.
_base_ = ['./synthetic.py']
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='UDADataset',
        source=_base_.synthetic_source_train,
        target=_base_.synthetic_target_train))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_base_.synthetic_target_val)
test_dataloader = val_dataloader
val_evaluator = dict(type='DDBIoUMetric')
test_evaluator = val_evaluator
