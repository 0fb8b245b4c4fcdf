# Round 1, Stage 1, region path (ST-cu, cut-mix): GTA5 -> Cityscapes,
# MiT-B5 with the DAFormer-style head, batch 2 source + 2 target on 1 GPU, 40k
# iterations, the transformer recipe, from ImageNet (issue 15; METHOD.md 2.3).
# DDB's own EMA and threshold are kept (uda.alpha=0.99, 0.968); DAFormer
# uses 0.999: --cfg-options uda.alpha=0.999
_base_ = [
    '../_base_/models/daformer_mitb5.py',
    '../_base_/datasets/st_gta2cs.py',
    '../_base_/uda/st_cutmix.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/adamw_poly10warm_40k_transformer.py',
]
train_dataloader = dict(batch_size=2)
