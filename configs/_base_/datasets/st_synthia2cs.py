# SYNTHIA -> Cityscapes self-training (not in the original): scored on the
# usual 16 and 13 classes as well as all 19.
_base_ = ['./st_gta2cs.py', './synthia_512x512.py']
train_dataloader = dict(dataset=dict(source=_base_.synthia_train))
val_evaluator = dict(
    type='DDBIoUMetric',
    class_subsets={
        '16': (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18),
        '13': (0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)})
test_evaluator = val_evaluator
