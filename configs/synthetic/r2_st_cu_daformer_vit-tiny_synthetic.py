# Round 2, Stage 1, ST-cu, tiny DINOv2-style ViT variant: student and EMA start from
# the round-1 CKD student, learning rate / 10 (METHOD.md 2.6).
_base_ = ['./st_cu_daformer_vit-tiny_synthetic.py']
uda = dict(distilled_model_path='work_dirs/ckd_daformer_vit-tiny_synthetic/iter_600.pth')
optim_wrapper = dict(optimizer=dict(lr=1e-4))
