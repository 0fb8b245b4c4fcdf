# Oracle of the synthetic domain shift: the network, init and schedule of a
# stage, trained on the *target* labels (which no UDA stage reads). It bounds
# what adaptation can reach; the pipeline reports the share of the
# reference -> oracle gap each stage closes.
_base_ = [
    '../_base_/models/deeplabv2red_r18v1c_tiny_pretrained.py',
    '../_base_/datasets/synthetic_oracle.py',
    '../_base_/synthetic_runtime.py',
]
