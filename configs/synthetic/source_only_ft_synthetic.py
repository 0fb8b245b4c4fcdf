# The source-only reference of the synthetic pipeline: the source-only model
# trained for another synthetic schedule on the source only, so it has seen
# as many iterations as a stage-1 model started from the same checkpoint.
_base_ = ['./source_only_synthetic.py']
model = dict(init_cfg=dict(
    type='Pretrained',
    checkpoint='work_dirs/source_only_synthetic/iter_400.pth'))
