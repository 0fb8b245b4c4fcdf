# Synscapes source crops: 1440x720 -> 1280x640, then as GTA (METHOD.md 2.2).
synscapes_train_pipeline = [
    dict(type='DDBLoadImageFromFile'),
    dict(type='DDBLoadAnnotations'),
    dict(type='Resize', scale=(1280, 720), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 512), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
synscapes_train_pmd_pipeline = synscapes_train_pipeline[:-1] + [
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
synscapes_train = dict(
    type='SynscapesDataset', data_root='data/synscapes',
    pipeline=synscapes_train_pipeline)
