# r1_ckd_dlv2_r101v1c_1x4_512x512_40k_synthia2cs on 2 GPUs x 2 images (SyncBN, DDP):
#   bash tools/dist_train.sh configs/synthia2cs/r1_ckd_dlv2_r101v1c_2x2_512x512_40k_synthia2cs.py 2
_base_ = ['./r1_ckd_dlv2_r101v1c_1x4_512x512_40k_synthia2cs.py']
train_dataloader = dict(batch_size=2)
