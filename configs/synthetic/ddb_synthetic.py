# The embedded default: the whole two-round DDB schedule on the built-in
# synthetic domain shift, on a CPU (the data is generated on first use).
#   python tools/ddb_pipeline.py configs/synthetic/ddb_synthetic.py [--seeds 0 1 2]
# `init` is the generic pretraining that stands in for ImageNet: only its
# backbone initialises every fresh model (the stage-1 models, both CKD
# students, the reference and the oracle), as the real configs load ImageNet
# weights into the backbone. With --seeds it is trained once and shared.
# `reference` is source-only and `oracle` is trained on the target labels,
# both with the network, init and schedule of a stage; the summary reports
# the share of the reference -> oracle gap every stage closes.
pipeline = dict(
    task='synthetic',
    init=dict(config='configs/synthetic/pretrain_synthetic.py',
              key='model.backbone.init_cfg.checkpoint',
              label='generic pretraining (init)', evaluate=False,
              shared=True),
    reference=dict(config='configs/synthetic/source_only_ft_synthetic.py'),
    oracle=dict(config='configs/synthetic/oracle_synthetic.py'),
    rounds=[
        dict(st=dict(cu='configs/synthetic/st_cu_synthetic.py',
                     ca='configs/synthetic/st_ca_synthetic.py'),
             ckd='configs/synthetic/ckd_synthetic.py'),
        dict(st=dict(cu='configs/synthetic/r2_st_cu_synthetic.py',
                     ca='configs/synthetic/r2_st_ca_synthetic.py'),
             ckd='configs/synthetic/r2_ckd_synthetic.py'),
    ],
    prototype_epochs=4,
    evaluate=True)
