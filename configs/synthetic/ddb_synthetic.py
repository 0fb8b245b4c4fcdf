# The embedded default: the whole two-round DDB schedule on the built-in
# synthetic domain shift, on a CPU (the data is generated on first use).
#   python tools/ddb_pipeline.py configs/synthetic/ddb_synthetic.py
# A source-only model trained first stands in for the ImageNet init of the
# real configs: every fresh model (ST round 1, both CKD students) starts from
# it. `reference` continues it on the source only for the same schedule.
pipeline = dict(
    task='synthetic',
    init=dict(config='configs/synthetic/source_only_synthetic.py'),
    reference=dict(config='configs/synthetic/source_only_ft_synthetic.py'),
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
