# Round 2, Stage 1, class path (ST-ca, class-mix): GTA5 + Synscapes -> Cityscapes, mitb5. Student
# and EMA start from the round-1 CKD student, learning rate / 10 (METHOD.md 2.6).
_base_ = ['./r1_st_ca_daformer_mitb5_1x2_512x512_40k_gta+syn2cs.py']
uda = dict(distilled_model_path='checkpoints/gta+syn2cs_round1/gta+syn2cs_ckd-pro_mitb5.pth')
optim_wrapper = dict(optimizer=dict(lr=6e-06))  # head: 6e-5 (lr_mult 10)
