# The whole DDB schedule for SYNTHIA -> Cityscapes with DINOv2 ViT-B/14 + multi-
# level neck + DAFormer-style head (issue 15): 6 trainings of 40k iterations and
# 4 prototype runs; never run at scale here (README "Backbones").
#   python tools/ddb_pipeline.py configs/synthia2cs/ddb_synthia2cs_dinov2-b.py [--gpus N]
pipeline = dict(
    task='synthia2cs',
    rounds=[
        dict(st=dict(cu='configs/synthia2cs/r1_st_cu_daformer_dinov2-b_1x2_512x512_40k_synthia2cs.py',
                     ca='configs/synthia2cs/r1_st_ca_daformer_dinov2-b_1x2_512x512_40k_synthia2cs.py'),
             ckd='configs/synthia2cs/r1_ckd_daformer_dinov2-b_1x2_512x512_40k_synthia2cs.py'),
        dict(st=dict(cu='configs/synthia2cs/r2_st_cu_daformer_dinov2-b_1x2_512x512_40k_synthia2cs.py',
                     ca='configs/synthia2cs/r2_st_ca_daformer_dinov2-b_1x2_512x512_40k_synthia2cs.py'),
             ckd='configs/synthia2cs/r2_ckd_daformer_dinov2-b_1x2_512x512_40k_synthia2cs.py'),
    ],
    prototype_epochs=4,
    evaluate=True)
