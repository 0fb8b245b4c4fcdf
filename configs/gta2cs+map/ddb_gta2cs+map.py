# The whole DDB schedule for GTA5 -> Cityscapes + Mapillary (60.4 / 56.9 mIoU published):
# 6 trainings of 40k iterations and 4 prototype runs.
#   python tools/ddb_pipeline.py configs/gta2cs+map/ddb_gta2cs+map.py [--gpus N]
# For a source-only reference, add
#   reference=dict(config='configs/gtav2cityscapes/so_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py')
pipeline = dict(
    task='gta2cs+map',
    rounds=[
        dict(st=dict(cu='configs/gta2cs+map/r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_gta2cs+map.py',
                     ca='configs/gta2cs+map/r1_st_ca_dlv2_r101v1c_1x4_512x512_40k_gta2cs+map.py'),
             ckd='configs/gta2cs+map/r1_ckd_dlv2_r101v1c_1x4_512x512_40k_gta2cs+map.py'),
        dict(st=dict(cu='configs/gta2cs+map/r2_st_cu_dlv2_r101v1c_1x4_512x512_40k_gta2cs+map.py',
                     ca='configs/gta2cs+map/r2_st_ca_dlv2_r101v1c_1x4_512x512_40k_gta2cs+map.py'),
             ckd='configs/gta2cs+map/r2_ckd_dlv2_r101v1c_1x4_512x512_40k_gta2cs+map.py'),
    ],
    prototype_epochs=4,
    evaluate=True)
