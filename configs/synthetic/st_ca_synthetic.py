# Stage 1, class path (class-mix) on the synthetic domain shift, from the
# generic pretraining's backbone (run configs/synthetic/pretrain_synthetic.py
# first, or let tools/ddb_pipeline.py wire it).
_base_ = [
    '../_base_/models/deeplabv2red_r18v1c_tiny_pretrained.py',
    '../_base_/datasets/synthetic_uda.py',
    '../_base_/uda/st_classmix.py',
    '../_base_/synthetic_runtime.py',
]
# score the teacher's pseudo-labels against the target labels (monitoring
# only, never in a loss; README "Watching a run")
uda = dict(monitor_pseudo_labels=True)
