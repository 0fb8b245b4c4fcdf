# Distillation data: GTA5 source crops with PhotoMetricDistortion paired with
# random Cityscapes train crops; Cityscapes val for evaluation.
_base_ = ['./st_gta2cs.py']
train_dataloader = dict(
    dataset=dict(source=dict(pipeline=_base_.gta_train_pmd_pipeline)))
