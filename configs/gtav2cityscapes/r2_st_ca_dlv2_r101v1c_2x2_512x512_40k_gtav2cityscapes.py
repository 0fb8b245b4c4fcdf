# r2_st_ca_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes on 2 GPUs x 2 images (SyncBN, DDP):
#   bash tools/dist_train.sh configs/gtav2cityscapes/r2_st_ca_dlv2_r101v1c_2x2_512x512_40k_gtav2cityscapes.py 2
_base_ = ['./r2_st_ca_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py']
train_dataloader = dict(batch_size=2)
