# The whole DDB schedule for GTA5 + Synscapes -> Cityscapes (69.0 mIoU published):
# 6 trainings of 40k iterations and 4 prototype runs.
#   python tools/ddb_pipeline.py configs/gta+syn2cs/ddb_gta+syn2cs.py [--gpus N]
# For a source-only reference, add
#   reference=dict(config='configs/gtav2cityscapes/so_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py')
pipeline = dict(
    task='gta+syn2cs',
    rounds=[
        dict(st=dict(cu='configs/gta+syn2cs/r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gta+syn2cs.py',
                     ca='configs/gta+syn2cs/r1_st_ca_dlv2_r101v1c_1x4_512x512_40k_gta+syn2cs.py'),
             ckd='configs/gta+syn2cs/r1_ckd_dlv2_r101v1c_1x4_512x512_40k_gta+syn2cs.py'),
        dict(st=dict(cu='configs/gta+syn2cs/r2_st_cu_dlv2_r101v1c_1x4_512x512_40k_gta+syn2cs.py',
                     ca='configs/gta+syn2cs/r2_st_ca_dlv2_r101v1c_1x4_512x512_40k_gta+syn2cs.py'),
             ckd='configs/gta+syn2cs/r2_ckd_dlv2_r101v1c_1x4_512x512_40k_gta+syn2cs.py'),
    ],
    prototype_epochs=4,
    evaluate=True)
