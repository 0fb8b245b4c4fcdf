# Dark Zurich val: 50 night images of 1920x1080, with the Cityscapes
# evaluation protocol (METHOD.md 3): the whole image resized to fit 1024x512
# keeping its ratio (910x512 here), single scale, scored against the label at
# full resolution.
_base_ = ['./cityscapes_512x512.py']
dark_zurich_test_pipeline = _base_.cityscapes_test_pipeline
dark_zurich_val = dict(
    type='DDBDarkZurichDataset',
    data_root='data/dark_zurich',
    data_prefix=dict(img_path='rgb_anon/val/night',
                     seg_map_path='gt/val/night'),
    pipeline=dark_zurich_test_pipeline)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dark_zurich_val)
test_dataloader = val_dataloader
val_evaluator = dict(type='DDBIoUMetric')
test_evaluator = val_evaluator
