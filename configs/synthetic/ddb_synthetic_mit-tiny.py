# The two-round DDB schedule on the synthetic domain shift with the tiny
# MiT variant (the DeepLabV2 demo is ddb_synthetic.py):
#   python tools/ddb_pipeline.py configs/synthetic/ddb_synthetic_mit-tiny.py
pipeline = dict(
    task='synthetic',
    init=dict(config='configs/synthetic/pretrain_daformer_mit-tiny_synthetic.py',
              key='model.backbone.init_cfg.checkpoint',
              label='generic pretraining (init)', evaluate=False,
              shared=True),
    rounds=[
        dict(st=dict(cu='configs/synthetic/st_cu_daformer_mit-tiny_synthetic.py',
                     ca='configs/synthetic/st_ca_daformer_mit-tiny_synthetic.py'),
             ckd='configs/synthetic/ckd_daformer_mit-tiny_synthetic.py'),
        dict(st=dict(cu='configs/synthetic/r2_st_cu_daformer_mit-tiny_synthetic.py',
                     ca='configs/synthetic/r2_st_ca_daformer_mit-tiny_synthetic.py'),
             ckd='configs/synthetic/r2_ckd_daformer_mit-tiny_synthetic.py'),
    ],
    prototype_epochs=4,
    evaluate=True)
