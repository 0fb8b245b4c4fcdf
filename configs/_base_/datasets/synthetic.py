# The built-in synthetic domain shift (mmseg_ddb.datasets.synthetic): a
# "game" look written in the GTA5 layout (source) and a "real" look written in
# the Cityscapes layout (target), 256x128 images, and a third, generic look
# (random colours per class and image) for the pretraining that stands in
# for ImageNet. Generated on first use.
synthetic = dict(root='data/synthetic', seed=0, num_generic=400, thing_scale=200,
                 shift=200)
synthetic_crop = (128, 128)
synthetic_source_pipeline = [
    dict(type='DDBLoadImageFromFile'),
    dict(type='DDBLoadAnnotations'),
    dict(type='RandomCrop', crop_size=synthetic_crop, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
synthetic_source_pmd_pipeline = synthetic_source_pipeline[:-1] + [
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
synthetic_target_pipeline = [
    dict(type='DDBLoadImageFromFile'),
    dict(type='RandomCrop', crop_size=synthetic_crop),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
synthetic_test_pipeline = [
    dict(type='DDBLoadImageFromFile'),
    dict(type='DDBLoadAnnotations'),
    dict(type='PackSegInputs'),
]
synthetic_source_train = dict(
    type='GTADataset',
    data_root='data/synthetic/gta',
    synthetic=synthetic,
    pipeline=synthetic_source_pipeline)
synthetic_target_train = dict(
    type='DDBCityscapesDataset',
    data_root='data/synthetic/cityscapes',
    data_prefix=dict(img_path='leftImg8bit/train'),
    synthetic=synthetic,
    pipeline=synthetic_target_pipeline)
synthetic_target_val = dict(
    type='DDBCityscapesDataset',
    data_root='data/synthetic/cityscapes',
    data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
    synthetic=synthetic,
    pipeline=synthetic_test_pipeline)
# held-out source-look images, to measure the domain gap
synthetic_source_val = dict(
    type='GTADataset',
    data_root='data/synthetic/gta_val/gta',
    synthetic=synthetic,
    pipeline=synthetic_test_pipeline)
# the generic look, for the pretraining that stands in for ImageNet
synthetic_generic_train = dict(
    type='GTADataset',
    data_root='data/synthetic/generic/gta',
    synthetic=synthetic,
    pipeline=synthetic_source_pipeline)
