# Multi-target distillation: GTA5 with PhotoMetricDistortion.
_base_ = ['./st_gta2csmap.py']
train_dataloader = dict(
    dataset=dict(source=dict(pipeline=_base_.gta_train_pmd_pipeline)))
