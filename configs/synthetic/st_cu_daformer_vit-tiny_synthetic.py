# Stage 1, region path (cut-mix) on the synthetic domain shift, tiny DINOv2-style ViT
# variant, from its generic pretraining's backbone.
_base_ = [
    '../_base_/models/daformer_vit-tiny_pretrained.py',
    '../_base_/datasets/synthetic_uda.py',
    '../_base_/uda/st_cutmix.py',
    '../_base_/synthetic_runtime.py',
]
# score the teacher's pseudo-labels against the target labels (monitoring
# only, never in a loss; README "Watching a run")
uda = dict(monitor_pseudo_labels=True)
