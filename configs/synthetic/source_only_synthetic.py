# Source-only on the synthetic domain shift, from a random init: train on
# the source look, evaluate on the target look. CPU, a couple of minutes.
# (The pipeline's source-only reference, source_only_ft_synthetic.py, starts
# from the generic pretraining like every stage.)
_base_ = [
    '../_base_/models/deeplabv2red_r18v1c_tiny.py',
    '../_base_/datasets/synthetic_source_only.py',
    '../_base_/synthetic_runtime.py',
]
