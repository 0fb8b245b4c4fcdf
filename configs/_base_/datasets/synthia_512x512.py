# SYNTHIA-RAND-CITYSCAPES source crops (1280x760 -> fits 1280x720).
synthia_train_pipeline = [
    dict(type='DDBLoadImageFromFile'),
    dict(type='DDBLoadAnnotations'),
    dict(type='Resize', scale=(1280, 720), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 512), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
synthia_train_pmd_pipeline = synthia_train_pipeline[:-1] + [
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
synthia_train = dict(
    type='SynthiaDataset', data_root='data/synthia',
    pipeline=synthia_train_pipeline)
