# Synthetic domain shift, UDA stages: source crops paired with random target
# crops; target-look val images for evaluation. The target's labels are
# loaded for pseudo-label monitoring only (target_labels; the leaf configs
# turn uda.monitor_pseudo_labels on): no loss reads them, and the crops are
# those drawn without them.
_base_ = ['./synthetic.py']
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='UDADataset',
        source=_base_.synthetic_source_train,
        target=dict(_base_.synthetic_target_train,
                    data_prefix=dict(img_path='leftImg8bit/train',
                                     seg_map_path='gtFine/train')),
        target_labels=True))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_base_.synthetic_target_val)
test_dataloader = val_dataloader
val_evaluator = dict(type='DDBIoUMetric')
test_evaluator = val_evaluator
