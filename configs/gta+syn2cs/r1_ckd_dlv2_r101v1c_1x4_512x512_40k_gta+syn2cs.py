# Round 1, Stage 2 (CKD with prototype rectification): GTA5 + Synscapes -> Cityscapes.
# A fresh ImageNet-initialised student learns from the round-1 ST-cu and
# ST-ca students (METHOD.md 2.5). The paths follow the convention
# checkpoints/<task>_round<r>/ and prototypes/<task>_round<r>/;
# tools/ddb_pipeline.py fills them in for you.
_base_ = [
    '../_base_/models/deeplabv2red_r101v1c_adapter.py',
    '../_base_/datasets/ckd_gtasyn2cs.py',
    '../_base_/uda/ckd.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly10warm_40k.py',
]
uda = dict(teachers=[
    dict(name='cu',
         checkpoint='checkpoints/gta+syn2cs_round1/gta+syn2cs_st-cu_dlv2.pth',
         prototypes='prototypes/gta+syn2cs_round1/gta+syn2cs_st-cu_dlv2.pth',
         config='configs/gta+syn2cs/r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gta+syn2cs.py'),
    dict(name='ca',
         checkpoint='checkpoints/gta+syn2cs_round1/gta+syn2cs_st-ca_dlv2.pth',
         prototypes='prototypes/gta+syn2cs_round1/gta+syn2cs_st-ca_dlv2.pth',
         config='configs/gta+syn2cs/r1_st_ca_dlv2_r101v1c_1x4_512x512_40k_gta+syn2cs.py'),
])
