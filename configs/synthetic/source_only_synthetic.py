# Source-only on the synthetic domain shift: train on the source look,
# evaluate on the target look. Its checkpoint is also the starting point of
# every synthetic UDA stage (it stands in for the ImageNet init of the real
# configs). CPU, a couple of minutes.
_base_ = [
    '../_base_/models/deeplabv2red_r18v1c_tiny.py',
    '../_base_/datasets/synthetic_source_only.py',
    '../_base_/synthetic_runtime.py',
]
