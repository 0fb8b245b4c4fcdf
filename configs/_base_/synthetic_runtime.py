# Runtime and schedule of the synthetic configs: the shared runtime, a short
# schedule, a checkpoint at the end, no painted validation images.
_base_ = ['./default_runtime.py', './schedules/synthetic_adamw_poly.py']
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=_base_.synthetic_iters, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False),
    # three debug grids per 600-iteration stage
    uda_debug=dict(interval=200))
env_cfg = dict(cudnn_benchmark=False)
