# The whole DDB schedule for GTA5 -> Cityscapes + Mapillary with MiT-B5 with the DAFormer-style head
# (issue 15): 6 trainings of 40k iterations and 4 prototype runs; never run at
# scale here (README "Backbones").
#   python tools/ddb_pipeline.py configs/gta2cs+map/ddb_gta2cs+map_mitb5.py [--gpus N]
pipeline = dict(
    task='gta2cs+map',
    rounds=[
        dict(st=dict(cu='configs/gta2cs+map/r1_st_cu_daformer_mitb5_1x2_512x512_40k_gta2cs+map.py',
                     ca='configs/gta2cs+map/r1_st_ca_daformer_mitb5_1x2_512x512_40k_gta2cs+map.py'),
             ckd='configs/gta2cs+map/r1_ckd_daformer_mitb5_1x2_512x512_40k_gta2cs+map.py'),
        dict(st=dict(cu='configs/gta2cs+map/r2_st_cu_daformer_mitb5_1x2_512x512_40k_gta2cs+map.py',
                     ca='configs/gta2cs+map/r2_st_ca_daformer_mitb5_1x2_512x512_40k_gta2cs+map.py'),
             ckd='configs/gta2cs+map/r2_ckd_daformer_mitb5_1x2_512x512_40k_gta2cs+map.py'),
    ],
    prototype_epochs=4,
    evaluate=True)
