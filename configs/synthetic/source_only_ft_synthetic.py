# The source-only reference of the synthetic pipeline: the network, init and
# schedule of every stage (from the generic pretraining's backbone), trained
# on the source labels only.
_base_ = [
    '../_base_/models/deeplabv2red_r18v1c_tiny_pretrained.py',
    '../_base_/datasets/synthetic_source_only.py',
    '../_base_/synthetic_runtime.py',
]
