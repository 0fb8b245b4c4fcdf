# Round 1, Stage 2 (CKD with prototype rectification): GTA5 -> Cityscapes.
# A fresh ImageNet-initialised student learns from the round-1 ST-cu and
# ST-ca students (METHOD.md 2.5). The paths follow the convention
# checkpoints/<task>_round<r>/ and prototypes/<task>_round<r>/;
# tools/ddb_pipeline.py fills them in for you.
_base_ = [
    '../_base_/models/deeplabv2red_r101v1c_adapter.py',
    '../_base_/datasets/ckd_gta2cs.py',
    '../_base_/uda/ckd.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly10warm_40k.py',
]
uda = dict(teachers=[
    dict(name='cu',
         checkpoint='checkpoints/gtav2cityscapes_round1/gtav2cityscapes_st-cu_dlv2.pth',
         prototypes='prototypes/gtav2cityscapes_round1/gtav2cityscapes_st-cu_dlv2.pth',
         config='configs/gtav2cityscapes/r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py'),
    dict(name='ca',
         checkpoint='checkpoints/gtav2cityscapes_round1/gtav2cityscapes_st-ca_dlv2.pth',
         prototypes='prototypes/gtav2cityscapes_round1/gtav2cityscapes_st-ca_dlv2.pth',
         config='configs/gtav2cityscapes/r1_st_ca_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py'),
])
