# ACDC val: fog, night, rain and snow (406 images of 1920x1080), with the
# Cityscapes evaluation protocol (METHOD.md 3): the whole image resized to
# fit 1024x512 keeping its ratio (910x512 here), single scale, scored against
# the label at full resolution.
#
# Metrics: `mIoU`, `mAcc`, `aAcc`, `IoU.<class>` over all of val (one
# confusion matrix over the 406 images, ACDC's "all" number), and per
# condition `condition/<fog|night|rain|snow>/mIoU` etc.; `condition/mIoU` is
# the mean of the four conditions' mIoU (not the same as `mIoU`).
# One condition only: --cfg-options "test_dataloader.dataset.conditions=[night]"
# (`mIoU` is then that condition's; the other conditions' keys read nan).
_base_ = ['./cityscapes_512x512.py']
acdc_test_pipeline = _base_.cityscapes_test_pipeline
acdc_val = dict(
    type='ACDCDataset',
    data_root='data/acdc',
    split='val',
    conditions=('fog', 'night', 'rain', 'snow'),
    pipeline=acdc_test_pipeline)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=acdc_val)
test_dataloader = val_dataloader
# a sample belongs to the condition whose "rgb_anon/<condition>/" its path has
val_evaluator = [
    dict(type='DDBIoUMetric'),
    dict(type='DDBIoUMetric', prefix='condition',
         datasets=dict(fog='rgb_anon/fog', night='rgb_anon/night',
                       rain='rgb_anon/rain', snow='rgb_anon/snow')),
]
test_evaluator = val_evaluator
