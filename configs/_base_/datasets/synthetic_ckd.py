# Synthetic domain shift, distillation: source crops with
# PhotoMetricDistortion, random target crops.
_base_ = ['./synthetic_uda.py']
train_dataloader = dict(
    dataset=dict(source=dict(pipeline=_base_.synthetic_source_pmd_pipeline)))
