# The original README's name for the round-2 ST-ca config of GTA5 ->
# Cityscapes; identical to configs/gtav2cityscapes/r2_st_ca_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py.
_base_ = ['../../gtav2cityscapes/r2_st_ca_dlv2_r101v1c_1x4_512x512_40k_gtav2cityscapes.py']
