# The whole DDB schedule for GTA5 -> Cityscapes with DINOv2 ViT-B/14 + multi-
# level neck + DAFormer-style head (issue 15): 6 trainings of 40k iterations and
# 4 prototype runs; never run at scale here (README "Backbones").
#   python tools/ddb_pipeline.py configs/gtav2cityscapes/ddb_gtav2cityscapes_dinov2-b.py [--gpus N]
pipeline = dict(
    task='gtav2cityscapes',
    rounds=[
        dict(st=dict(cu='configs/gtav2cityscapes/r1_st_cu_daformer_dinov2-b_1x2_512x512_40k_gtav2cityscapes.py',
                     ca='configs/gtav2cityscapes/r1_st_ca_daformer_dinov2-b_1x2_512x512_40k_gtav2cityscapes.py'),
             ckd='configs/gtav2cityscapes/r1_ckd_daformer_dinov2-b_1x2_512x512_40k_gtav2cityscapes.py'),
        dict(st=dict(cu='configs/gtav2cityscapes/r2_st_cu_daformer_dinov2-b_1x2_512x512_40k_gtav2cityscapes.py',
                     ca='configs/gtav2cityscapes/r2_st_ca_daformer_dinov2-b_1x2_512x512_40k_gtav2cityscapes.py'),
             ckd='configs/gtav2cityscapes/r2_ckd_daformer_dinov2-b_1x2_512x512_40k_gtav2cityscapes.py'),
    ],
    prototype_epochs=4,
    evaluate=True)
