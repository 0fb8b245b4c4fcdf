# The whole DDB schedule for SYNTHIA -> Cityscapes (no published DDB number):
# 6 trainings of 40k iterations and 4 prototype runs.
#   python tools/ddb_pipeline.py configs/synthia2cs/ddb_synthia2cs.py [--gpus N]
# For a source-only reference, add
#   reference=dict(config='configs/gtav2cityscapes/so_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py')
pipeline = dict(
    task='synthia2cs',
    rounds=[
        dict(st=dict(cu='configs/synthia2cs/r1_st_cu_dlv2_r101v1c_1x4_512x512_40k_synthia2cs.py',
                     ca='configs/synthia2cs/r1_st_ca_dlv2_r101v1c_1x4_512x512_40k_synthia2cs.py'),
             ckd='configs/synthia2cs/r1_ckd_dlv2_r101v1c_1x4_512x512_40k_synthia2cs.py'),
        dict(st=dict(cu='configs/synthia2cs/r2_st_cu_dlv2_r101v1c_1x4_512x512_40k_synthia2cs.py',
                     ca='configs/synthia2cs/r2_st_ca_dlv2_r101v1c_1x4_512x512_40k_synthia2cs.py'),
             ckd='configs/synthia2cs/r2_ckd_dlv2_r101v1c_1x4_512x512_40k_synthia2cs.py'),
    ],
    prototype_epochs=4,
    evaluate=True)
