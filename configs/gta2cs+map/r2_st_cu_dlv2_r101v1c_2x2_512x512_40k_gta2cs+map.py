# r2_st_cu_dlv2_r101v1c_1x4_512x512_40k_gta2cs+map on 2 GPUs x 2 images (SyncBN, DDP):
#   bash tools/dist_train.sh configs/gta2cs+map/r2_st_cu_dlv2_r101v1c_2x2_512x512_40k_gta2cs+map.py 2
_base_ = ['./r2_st_cu_dlv2_r101v1c_1x4_512x512_40k_gta2cs+map.py']
train_dataloader = dict(batch_size=2)
