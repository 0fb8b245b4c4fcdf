# GTA5 source crops (METHOD.md 2.2): 1914x1052 -> 1280x704, 512 crop with
# cat_max_ratio 0.75, flip. `_pmd` adds PhotoMetricDistortion (CKD only).
gta_train_pipeline = [
    dict(type='DDBLoadImageFromFile'),
    dict(type='DDBLoadAnnotations', size_mismatch='resize'),
    dict(type='Resize', scale=(1280, 720), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 512), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
gta_train_pmd_pipeline = gta_train_pipeline[:-1] + [
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
gta_train = dict(
    type='GTADataset', data_root='data/gta', pipeline=gta_train_pipeline)
