# Synthetic domain shift, oracle: the target-look training images with their
# labels (which no UDA stage reads), the target-look val images for
# evaluation. The upper bound the demo's stages are measured against.
_base_ = ['./synthetic_uda.py']
train_dataloader = dict(dataset=dict(
    _delete_=True,
    type='DDBCityscapesDataset',
    data_root='data/synthetic/cityscapes',
    data_prefix=dict(img_path='leftImg8bit/train',
                     seg_map_path='gtFine/train'),
    synthetic=_base_.synthetic,
    pipeline=_base_.synthetic_source_pipeline))
