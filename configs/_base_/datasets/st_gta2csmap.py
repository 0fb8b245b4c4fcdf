# Multi-target self-training: Cityscapes + Mapillary train concatenated and
# sampled uniformly (METHOD.md 2.7); both val sets, scored separately.
_base_ = ['./st_gta2cs.py', './mapillary_512x512.py']
train_dataloader = dict(
    dataset=dict(target=[_base_.cityscapes_train, _base_.mapillary_train]))
val_dataloader = dict(dataset=dict(
    _delete_=True,
    type='ConcatDataset',
    datasets=[_base_.cityscapes_val, _base_.mapillary_val]))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='DDBIoUMetric',
    datasets=dict(cityscapes='data/cityscapes', mapillary='data/mapillary'))
test_evaluator = val_evaluator
