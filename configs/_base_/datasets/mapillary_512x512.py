# Mapillary Vistas v1.2 mapped to Cityscapes (METHOD.md 2.2, 3).
# Train: short side to 512 (the original's Resize((1024, 512), min_size=512)
# does exactly that for every aspect ratio), 512 crop, flip.
# Val: the half-resolution set, resized to fit 1024x512, scored at half res.
mapillary_train_pipeline = [
    dict(type='DDBLoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=512, max_size=100000),
    dict(type='RandomCrop', crop_size=(512, 512)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
mapillary_test_pipeline = [
    dict(type='DDBLoadImageFromFile'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='DDBLoadAnnotations'),
    dict(type='PackSegInputs'),
]
mapillary_train = dict(
    type='MapillaryDataset',
    data_root='data/mapillary',
    data_prefix=dict(img_path='training/images'),
    pipeline=mapillary_train_pipeline)
mapillary_val = dict(
    type='MapillaryDataset',
    data_root='data/mapillary',
    data_prefix=dict(img_path='half/val_img', seg_map_path='half/val_label'),
    pipeline=mapillary_test_pipeline)
