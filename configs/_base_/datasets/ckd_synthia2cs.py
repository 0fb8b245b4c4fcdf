# SYNTHIA -> Cityscapes distillation: SYNTHIA with PhotoMetricDistortion.
_base_ = ['./st_synthia2cs.py']
train_dataloader = dict(
    dataset=dict(source=dict(pipeline=_base_.synthia_train_pmd_pipeline)))
