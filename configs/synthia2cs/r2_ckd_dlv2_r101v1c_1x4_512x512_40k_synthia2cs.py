# Round 2, Stage 2 (CKD with prototype rectification): SYNTHIA -> Cityscapes.
# A fresh ImageNet-initialised student learns from the round-2 ST-cu and
# ST-ca students (METHOD.md 2.5). The paths follow the convention
# checkpoints/<task>_round<r>/ and prototypes/<task>_round<r>/;
# tools/ddb_pipeline.py fills them in for you.
_base_ = [
    '../_base_/models/deeplabv2red_r101v1c_adapter.py',
    '../_base_/datasets/ckd_synthia2cs.py',
    '../_base_/uda/ckd.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly10warm_40k.py',
]
uda = dict(teachers=[
    dict(name='cu',
         checkpoint='checkpoints/synthia2cs_round2/synthia2cs_st-cu_dlv2.pth',
         prototypes='prototypes/synthia2cs_round2/synthia2cs_st-cu_dlv2.pth',
         config='configs/synthia2cs/r2_st_cu_dlv2_r101v1c_1x4_512x512_40k_synthia2cs.py'),
    dict(name='ca',
         checkpoint='checkpoints/synthia2cs_round2/synthia2cs_st-ca_dlv2.pth',
         prototypes='prototypes/synthia2cs_round2/synthia2cs_st-ca_dlv2.pth',
         config='configs/synthia2cs/r2_st_ca_dlv2_r101v1c_1x4_512x512_40k_synthia2cs.py'),
])
