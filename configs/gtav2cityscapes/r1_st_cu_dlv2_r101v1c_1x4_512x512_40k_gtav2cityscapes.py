# Round 1, Stage 1, region path (ST-cu, cut-mix): GTA5 -> Cityscapes,
# DeepLabV2-R101 (reduced adapter), batch 4 on 1 GPU, 40k iterations,
# from ImageNet (METHOD.md 2.3).
_base_ = [
    '../_base_/models/deeplabv2red_r101v1c_adapter.py',
    '../_base_/datasets/st_gta2cs.py',
    '../_base_/uda/st_cutmix.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly10warm_40k.py',
]
