# Runtime shared by every stage (METHOD.md 2.8).
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ddb'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
# scalars (every loss term, the ST quality weight, lr, val mIoU) and the UDA
# debug grids go to vis_data/ as JSON and PNG files and to TensorBoard
# (tensorboard --logdir WORK_DIR); README "Watching a run" shows W&B
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
default_hooks = dict(
    # the log variables stay on the device between logging intervals (no
    # host-device synchronisation per step); same values as mmengine's hook
    runtime_info=dict(type='DeferredRuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # every 4000 iterations, keeping only the latest (METHOD.md 2.8); the old
    # one is deleted only once the new one is complete
    checkpoint=dict(
        type='SafeCheckpointHook', by_epoch=False, interval=4000,
        max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # UDA stages: a grid of what the teacher labelled and what the student
    # trained on, every `interval` iterations (0 = off), in
    # WORK_DIR/debug_images and TensorBoard; other models are skipped
    uda_debug=dict(type='UDADebugImageHook', interval=1000))
# RNG state across a resume; stop at a non-finite loss, checked when the logs
# are read and before every checkpoint (check_interval=1: every step), or
# mode='skip': drop non-finite steps, stop after max_skips of them
custom_hooks = [
    dict(type='RNGStateHook'),
    dict(type='NaNGuardHook', mode='stop', max_skips=10),
]
randomness = dict(seed=0)
