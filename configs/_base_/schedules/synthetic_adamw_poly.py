# Short CPU schedule for the synthetic configs: the same AdamW + warmup +
# poly shape as the 40k schedule, with a learning rate for a network trained
# from scratch in a few hundred iterations.
_base_ = ['./adamw_poly10warm_40k.py']
synthetic_iters = 600
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=40),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0,
         end=synthetic_iters),
]
train_cfg = dict(max_iters=synthetic_iters, val_interval=synthetic_iters)
