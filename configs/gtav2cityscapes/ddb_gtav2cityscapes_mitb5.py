# The whole DDB schedule for GTA5 -> Cityscapes with MiT-B5 with the DAFormer-style head
# (issue 15): 6 trainings of 40k iterations and 4 prototype runs; never run at
# scale here (README "Backbones").
#   python tools/ddb_pipeline.py configs/gtav2cityscapes/ddb_gtav2cityscapes_mitb5.py [--gpus N]
pipeline = dict(
    task='gtav2cityscapes',
    rounds=[
        dict(st=dict(cu='configs/gtav2cityscapes/r1_st_cu_daformer_mitb5_1x2_512x512_40k_gtav2cityscapes.py',
                     ca='configs/gtav2cityscapes/r1_st_ca_daformer_mitb5_1x2_512x512_40k_gtav2cityscapes.py'),
             ckd='configs/gtav2cityscapes/r1_ckd_daformer_mitb5_1x2_512x512_40k_gtav2cityscapes.py'),
        dict(st=dict(cu='configs/gtav2cityscapes/r2_st_cu_daformer_mitb5_1x2_512x512_40k_gtav2cityscapes.py',
                     ca='configs/gtav2cityscapes/r2_st_ca_daformer_mitb5_1x2_512x512_40k_gtav2cityscapes.py'),
             ckd='configs/gtav2cityscapes/r2_ckd_daformer_mitb5_1x2_512x512_40k_gtav2cityscapes.py'),
    ],
    prototype_epochs=4,
    evaluate=True)
