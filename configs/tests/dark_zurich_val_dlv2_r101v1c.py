# Evaluate a DeepLabV2-R101 (DDB adapter head) checkpoint on Dark Zurich val
# (50 night images), e.g. the released GTA5->Cityscapes weights:
#   python tools/test.py configs/tests/dark_zurich_val_dlv2_r101v1c.py \
#       weights/gta2cs/r2-ckd-pro-bs1x4/weight.pth --eval mIoU
# Whole image at 1024x512 (keep ratio), single scale, as for Cityscapes.
# Data layout: data/README.md (data/dark_zurich).
_base_ = [
    '../_base_/models/deeplabv2red_r101v1c_adapter.py',
    '../_base_/datasets/dark_zurich_val.py',
    '../_base_/default_runtime.py',
]
model = dict(pretrained=None)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
