# Evaluate the released DDB weights for GTA5->Cityscapes (published: 62.7 mIoU):
#   python tools/test.py configs/tests/gta2cs_r2-ckd-pro-bs1x4.py \
#       weights/gta2cs/r2-ckd-pro-bs1x4/weight.pth --eval mIoU
# The file's CKD student (stu_model.*) is loaded; whole image at 1024x512,
# single scale (METHOD.md section 3).
_base_ = [
    '../_base_/models/deeplabv2red_r101v1c_adapter.py',
    '../_base_/datasets/st_gta2cs.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly10warm_40k.py',
]
model = dict(pretrained=None)
