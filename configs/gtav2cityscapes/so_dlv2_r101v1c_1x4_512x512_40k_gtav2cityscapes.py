# Source-only baseline: DeepLabV2 (reduced adapter) R101, GTA5 -> Cityscapes,
# batch 4 on 1 GPU, 40k iterations. Every UDA config extends this setup.
_base_ = [
    '../_base_/models/deeplabv2red_r101v1c_adapter.py',
    '../_base_/datasets/gta2cs_source_only.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly10warm_40k.py',
]
