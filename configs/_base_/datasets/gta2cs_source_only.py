# Source-only data: GTA5 crops for training (the self-training loaders with
# the source alone), Cityscapes val for evaluation.
_base_ = ['./st_gta2cs.py']
train_dataloader = dict(dataset=dict(_delete_=True, **_base_.gta_train))
