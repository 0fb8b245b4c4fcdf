# Synthetic domain shift, source-only: source crops for training, the
# target-look val images for evaluation.
_base_ = ['./synthetic_uda.py']
train_dataloader = dict(dataset=dict(_delete_=True,
                                     **_base_.synthetic_source_train))
