# The transformer recipe of the DAFormer family on top of DDB's schedule:
# AdamW 6e-5, decode head lr x10, no weight decay on the backbone's norms and
# position embeddings / class token, poly 1.0 with a 1500-iteration linear
# warmup over 40k iterations. (The head's own BN keeps decay, as there: a
# parameter matched by a custom key takes that key's settings only.)
_base_ = ['./adamw_poly10warm_40k.py']
optim_wrapper = dict(paramwise_cfg=dict(
    norm_decay_mult=0.0,
    custom_keys=dict(
        head=dict(lr_mult=10.0),
        pos_embed=dict(decay_mult=0.0),
        cls_token=dict(decay_mult=0.0))))
