# Round 1, Stage 2 (CKD) on the synthetic domain shift, tiny DINOv2-style ViT variant:
# a fresh student (from the generic pretraining) learns from the round-1
# ST-cu and ST-ca students, each rectified by its prototypes.
# tools/ddb_pipeline.py wires the paths.
_base_ = [
    '../_base_/models/daformer_vit-tiny_pretrained.py',
    '../_base_/datasets/synthetic_ckd.py',
    '../_base_/uda/ckd.py',
    '../_base_/synthetic_runtime.py',
]
# the teachers' labels scored against the target labels (monitoring only)
uda = dict(monitor_pseudo_labels=True, teachers=[
    dict(name='cu',
         checkpoint='work_dirs/st_cu_daformer_vit-tiny_synthetic/iter_600.pth',
         prototypes='prototypes/synthetic_round1/synthetic_st-cu_vit-tiny.pth',
         config='configs/synthetic/st_cu_daformer_vit-tiny_synthetic.py'),
    dict(name='ca',
         checkpoint='work_dirs/st_ca_daformer_vit-tiny_synthetic/iter_600.pth',
         prototypes='prototypes/synthetic_round1/synthetic_st-ca_vit-tiny.pth',
         config='configs/synthetic/st_ca_daformer_vit-tiny_synthetic.py'),
])
