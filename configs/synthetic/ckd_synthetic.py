# Stage 2 (CKD) on the synthetic domain shift: a fresh student (from the
# generic pretraining, standing in for ImageNet) learns from the ST-cu and
# ST-ca students, each rectified by its prototypes. tools/ddb_pipeline.py
# wires the paths; by hand, run the two ST configs and cal_prototype.py first.
_base_ = [
    '../_base_/models/deeplabv2red_r18v1c_tiny_pretrained.py',
    '../_base_/datasets/synthetic_ckd.py',
    '../_base_/uda/ckd.py',
    '../_base_/synthetic_runtime.py',
]
# the teachers' labels scored against the target labels (monitoring only)
uda = dict(monitor_pseudo_labels=True, teachers=[
    dict(name='cu',
         checkpoint='work_dirs/st_cu_synthetic/iter_600.pth',
         prototypes='prototypes/synthetic_round1/synthetic_st-cu_dlv2.pth',
         config='configs/synthetic/st_cu_synthetic.py'),
    dict(name='ca',
         checkpoint='work_dirs/st_ca_synthetic/iter_600.pth',
         prototypes='prototypes/synthetic_round1/synthetic_st-ca_dlv2.pth',
         config='configs/synthetic/st_ca_synthetic.py'),
])
