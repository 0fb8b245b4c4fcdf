# Round 2, Stage 1, region path (ST-cu, cut-mix): GTA5 -> Cityscapes + Mapillary, mitb5. Student
# and EMA start from the round-1 CKD student, learning rate / 10 (METHOD.md 2.6).
_base_ = ['./r1_st_cu_daformer_mitb5_1x2_512x512_40k_gta2cs+map.py']
uda = dict(distilled_model_path='checkpoints/gta2cs+map_round1/gta2cs+map_ckd-pro_mitb5.pth')
optim_wrapper = dict(optimizer=dict(lr=6e-06))  # head: 6e-5 (lr_mult 10)
