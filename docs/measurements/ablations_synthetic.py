# The ablation table of the README ("What each switch does on the demo"):
# every switch on one round-1 stage, the later stages not rerun, over the
# seeds of a finished main job (round 1 is enough):
#   python tools/ddb_pipeline.py configs/synthetic/ddb_synthetic.py \
#       --seeds 0 1 2 --ablate docs/measurements/ablations_synthetic.py
# Each entry runs in WORK_DIR/ablations/<name>/seed<S>/; the summary is
# WORK_DIR/ablations/summary.{json,md}. Listed in the order they were run.
_st = ['r1_st_cu']   # ST switches: the region path of round 1
_ckd = ['r1_ckd']    # CKD switches: round 1's distillation
ablations = [
    dict(name='no rectification', stages=_ckd, downstream=False,
         options={'uda.proto_rectify': False}),
    dict(name='pseudo_weight=pixel', stages=_st, downstream=False,
         options={'uda.pseudo_weight': 'pixel'}),
    dict(name='CKD 2x iterations', stages=_ckd, downstream=False,
         options={'train_cfg.max_iters': 1200,
                  'param_scheduler.1.end': 1200}),
    dict(name='student_init=teacher', stages=_ckd, downstream=False,
         options={'uda.student_init': 'teacher'}),
    dict(name='no bridging', stages=_st, downstream=False,
         options={'uda.mask': 'none'}),
    dict(name='renormalize', stages=_ckd, downstream=False,
         options={'uda.renormalize': True}),
    dict(name='use_pl_weight', stages=_ckd, downstream=False,
         options={'uda.use_pl_weight': True}),
    dict(name='teacher_bn=eval', stages=_st, downstream=False,
         options={'uda.teacher_bn': 'eval'}),
    dict(name='blur_mode=2d', stages=_st, downstream=False,
         options={'uda.blur_mode': '2d'}),
    dict(name='CKD 3x iterations', stages=_ckd, downstream=False,
         options={'train_cfg.max_iters': 1800,
                  'param_scheduler.1.end': 1800}),
]
