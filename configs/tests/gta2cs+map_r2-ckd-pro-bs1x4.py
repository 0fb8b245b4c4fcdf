# Evaluate the released DDB weights for GTA5->Cityscapes+Mapillary (published: 60.4/56.9 mIoU):
#   python tools/test.py configs/tests/gta2cs+map_r2-ckd-pro-bs1x4.py \
#       weights/gta2cs+map/r2-ckd-pro-bs1x4/weight.pth --eval mIoU
# The file's CKD student (stu_model.*) is loaded; whole image at 1024x512,
# single scale (METHOD.md section 3).
_base_ = [
    '../_base_/models/deeplabv2red_r101v1c_adapter.py',
    '../_base_/datasets/st_gta2csmap.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly10warm_40k.py',
]
model = dict(pretrained=None)
