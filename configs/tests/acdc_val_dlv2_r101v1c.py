# Evaluate a DeepLabV2-R101 (DDB adapter head) checkpoint on ACDC val, e.g.
# the released GTA5->Cityscapes weights (trained without any ACDC image):
#   python tools/test.py configs/tests/acdc_val_dlv2_r101v1c.py \
#       weights/gta2cs/r2-ckd-pro-bs1x4/weight.pth --eval mIoU
# Prints mIoU over all of val and per condition (condition/fog/mIoU, ...);
# whole image at 1024x512 (keep ratio), single scale, as for Cityscapes.
# Data layout: data/README.md (data/acdc).
_base_ = [
    '../_base_/models/deeplabv2red_r101v1c_adapter.py',
    '../_base_/datasets/acdc_val.py',
    '../_base_/default_runtime.py',
]
model = dict(pretrained=None)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
