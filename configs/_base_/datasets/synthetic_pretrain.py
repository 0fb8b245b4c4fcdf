# Synthetic domain shift, generic pretraining: the third, generic look
# (random colours per class and image) labelled with the 7 Cityscapes
# categories. No evaluation: the categories are not the 19 classes.
_base_ = ['./synthetic_uda.py']
train_dataloader = dict(dataset=dict(_delete_=True,
                                     **_base_.synthetic_generic_train))
val_dataloader = None
val_evaluator = None
test_dataloader = None
test_evaluator = None
