# Round 2, Stage 2 (CKD with prototype rectification): GTA5 -> Cityscapes + Mapillary,
# DINOv2 ViT-B/14 + multi-level neck + DAFormer-style head, batch 2 + 2. A fresh student (from
# the DINOv2 weights) learns from the round-2 ST-cu and ST-ca students (METHOD.md 2.5);
# tools/ddb_pipeline.py fills the paths in.
_base_ = [
    '../_base_/models/daformer_dinov2-b.py',
    '../_base_/datasets/ckd_gta2csmap.py',
    '../_base_/uda/ckd.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly10warm_40k_transformer.py',
]
train_dataloader = dict(batch_size=2)
uda = dict(teachers=[
    dict(name='cu',
         checkpoint='checkpoints/gta2cs+map_round2/gta2cs+map_st-cu_dinov2-b.pth',
         prototypes='prototypes/gta2cs+map_round2/gta2cs+map_st-cu_dinov2-b.pth',
         config='configs/gta2cs+map/r2_st_cu_daformer_dinov2-b_1x2_512x512_40k_gta2cs+map.py'),
    dict(name='ca',
         checkpoint='checkpoints/gta2cs+map_round2/gta2cs+map_st-ca_dinov2-b.pth',
         prototypes='prototypes/gta2cs+map_round2/gta2cs+map_st-ca_dinov2-b.pth',
         config='configs/gta2cs+map/r2_st_ca_daformer_dinov2-b_1x2_512x512_40k_gta2cs+map.py'),
])
