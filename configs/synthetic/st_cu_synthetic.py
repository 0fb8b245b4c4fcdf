# Stage 1, region path (cut-mix) on the synthetic domain shift, from the
# source-only checkpoint (run configs/synthetic/source_only_synthetic.py
# first, or let tools/ddb_pipeline.py wire it).
_base_ = [
    '../_base_/models/deeplabv2red_r18v1c_tiny.py',
    '../_base_/datasets/synthetic_uda.py',
    '../_base_/uda/st_cutmix.py',
    '../_base_/synthetic_runtime.py',
]
model = dict(init_cfg=dict(
    type='Pretrained',
    checkpoint='work_dirs/source_only_synthetic/iter_400.pth'))
