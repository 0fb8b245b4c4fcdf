# Round 2, Stage 1, class path (ST-ca, class-mix): SYNTHIA -> Cityscapes, mitb5. Student
# and EMA start from the round-1 CKD student, learning rate / 10 (METHOD.md 2.6).
_base_ = ['./r1_st_ca_daformer_mitb5_1x2_512x512_40k_synthia2cs.py']
uda = dict(distilled_model_path='checkpoints/synthia2cs_round1/synthia2cs_ckd-pro_mitb5.pth')
optim_wrapper = dict(optimizer=dict(lr=6e-06))  # head: 6e-5 (lr_mult 10)
