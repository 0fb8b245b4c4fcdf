# The whole DDB schedule for GTA5 -> Cityscapes (62.7 mIoU published):
# 6 trainings of 40k iterations and 4 prototype runs.
#   python tools/ddb_pipeline.py configs/gtav2cityscapes/ddb_gtav2cityscapes.py [--gpus N]
# For a source-only reference, add
#   reference=dict(config='configs/gtav2cityscapes/so_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py')
pipeline = dict(
    task='gtav2cityscapes',
    rounds=[
        dict(st=dict(cu='configs/gtav2cityscapes/r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py',
                     ca='configs/gtav2cityscapes/r1_st_ca_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py'),
             ckd='configs/gtav2cityscapes/r1_ckd_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py'),
        dict(st=dict(cu='configs/gtav2cityscapes/r2_st_cu_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py',
                     ca='configs/gtav2cityscapes/r2_st_ca_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py'),
             ckd='configs/gtav2cityscapes/r2_ckd_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py'),
    ],
    prototype_epochs=4,
    evaluate=True)
