# The whole DDB schedule for GTA5 + Synscapes -> Cityscapes with MiT-B5 with the DAFormer-style head
# (issue 15): 6 trainings of 40k iterations and 4 prototype runs; never run at
# scale here (README "Backbones").
#   python tools/ddb_pipeline.py configs/gta+syn2cs/ddb_gta+syn2cs_mitb5.py [--gpus N]
pipeline = dict(
    task='gta+syn2cs',
    rounds=[
        dict(st=dict(cu='configs/gta+syn2cs/r1_st_cu_daformer_mitb5_1x2_512x512_40k_gta+syn2cs.py',
                     ca='configs/gta+syn2cs/r1_st_ca_daformer_mitb5_1x2_512x512_40k_gta+syn2cs.py'),
             ckd='configs/gta+syn2cs/r1_ckd_daformer_mitb5_1x2_512x512_40k_gta+syn2cs.py'),
        dict(st=dict(cu='configs/gta+syn2cs/r2_st_cu_daformer_mitb5_1x2_512x512_40k_gta+syn2cs.py',
                     ca='configs/gta+syn2cs/r2_st_ca_daformer_mitb5_1x2_512x512_40k_gta+syn2cs.py'),
             ckd='configs/gta+syn2cs/r2_ckd_daformer_mitb5_1x2_512x512_40k_gta+syn2cs.py'),
    ],
    prototype_epochs=4,
    evaluate=True)
