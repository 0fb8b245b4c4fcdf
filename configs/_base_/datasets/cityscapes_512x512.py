# Cityscapes (METHOD.md 2.2, 3). Train: 1024x512, 512 crop, flip; the target
# labels are never read. Val: whole image at 1024x512, scored at 2048x1024.
cityscapes_train_pipeline = [
    dict(type='DDBLoadImageFromFile'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 512)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
cityscapes_test_pipeline = [
    dict(type='DDBLoadImageFromFile'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    # labels load after the resize: they stay at full resolution
    dict(type='DDBLoadAnnotations'),
    dict(type='PackSegInputs'),
]
cityscapes_train = dict(
    type='DDBCityscapesDataset',
    data_root='data/cityscapes',
    data_prefix=dict(img_path='leftImg8bit/train'),
    pipeline=cityscapes_train_pipeline)
cityscapes_val = dict(
    type='DDBCityscapesDataset',
    data_root='data/cityscapes',
    data_prefix=dict(
        img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
    pipeline=cityscapes_test_pipeline)
