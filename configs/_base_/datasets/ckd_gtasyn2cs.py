# Multi-source distillation: both sources with PhotoMetricDistortion.
_base_ = ['./st_gtasyn2cs.py']
train_dataloader = dict(dataset=dict(source=[
    dict(_base_.gta_train, pipeline=_base_.gta_train_pmd_pipeline),
    dict(_base_.synscapes_train, pipeline=_base_.synscapes_train_pmd_pipeline),
]))
