# Multi-source self-training: GTA5 + Synscapes concatenated, sampled
# uniformly (METHOD.md 2.7); Cityscapes target and val.
_base_ = ['./st_gta2cs.py', './synscapes_512x512.py']
train_dataloader = dict(
    dataset=dict(source=[_base_.gta_train, _base_.synscapes_train]))
