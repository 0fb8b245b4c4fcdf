"""The dataset classes read their on-disk layouts, and bad data gives one
clear :class:`DataError` naming the file (METHOD.md 3, STYLE.md)."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from conftest import make_scene, write_cityscapes, write_gta, write_png
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader

import mmseg_ddb  # noqa: F401
from mmseg_ddb.datasets import (
    DDBCityscapesDataset,
    DDBLoadAnnotations,
    DDBLoadImageFromFile,
    GTADataset,
    MapillaryDataset,
    SynscapesDataset,
    SynthiaDataset,
)
from mmseg_ddb.errors import DataError, one_line

init_default_scope('mmseg')
LOAD = [dict(type='DDBLoadImageFromFile'), dict(type='DDBLoadAnnotations')]

# class, image path, label path, converter leftovers next to the labels,
# extra constructor arguments. ``{s}`` is the sample stem, ``{c}`` the city.
LAYOUTS = {
    'gta': (GTADataset, 'images/{s}.png', 'labels/{s}_labelTrainIds.png',
            ['labels/{s}.png'], {}),
    'synscapes': (SynscapesDataset, 'img/rgb/{s}.png',
                  'img/class/{s}_gt_labelTrainIds.png',
                  ['img/class/{s}.png', 'img/class/{s}_gt_color.png'], {}),
    'synthia': (SynthiaDataset, 'RGB/{s}.png',
                'GT/LABELS/{s}_labelTrainIds.png', ['GT/LABELS/{s}.png'], {}),
    'mapillary': (MapillaryDataset, 'training/images/{s}.jpg',
                  'cityscapes_trainIdLabel/train/label/{s}.png', [], {}),
    'cityscapes': (DDBCityscapesDataset,
                   'leftImg8bit/val/{c}/{s}_leftImg8bit.png',
                   'gtFine/val/{c}/{s}_gtFine_labelTrainIds.png',
                   ['gtFine/val/{c}/{s}_gtFine_labelIds.png',
                    'gtFine/val/{c}/{s}_gtFine_color.png'],
                   dict(data_prefix=dict(img_path='leftImg8bit/val',
                                         seg_map_path='gtFine/val'))),
}
STEMS = {'gta': ['00000', '00001', '00002'], 'synscapes': ['1', '2', '3'],
         'synthia': ['0000000', '0000001', '0000002'],
         'mapillary': ['-0a1b2c', 'Xy_9', 'zz00'],
         'cityscapes': ['aachen_000000_000019', 'aachen_000001_000019',
                        'bochum_000000_000313']}


def write_layout(root, name):
    """Three samples; sample i has a label made mostly of class 2 * i."""
    _, img_fmt, lbl_fmt, extras, _ = LAYOUTS[name]
    rng = np.random.default_rng(0)
    expected = {}
    for i, stem in enumerate(STEMS[name]):
        fields = dict(s=stem, c=stem.split('_')[0])
        image, _ = make_scene(rng, 64, 96)
        label = np.full((64, 96), 2 * i, np.uint8)
        label[:4] = 255
        img_path = osp.join(root, img_fmt.format(**fields))
        lbl_path = osp.join(root, lbl_fmt.format(**fields))
        write_png(img_path, image)
        write_png(lbl_path, label)
        for extra in extras:  # raw/colour labels: 3 channels, ids > 18
            write_png(osp.join(root, extra.format(**fields)),
                      np.full((64, 96, 3), 33, np.uint8))
        expected[img_path] = (lbl_path, image, label)
    return expected


@pytest.mark.parametrize('name', sorted(LAYOUTS))
def test_dataset_reads_its_layout_and_pairs(tmp_path, name):
    cls, _, _, _, kwargs = LAYOUTS[name]
    expected = write_layout(str(tmp_path), name)
    ds = cls(data_root=str(tmp_path), pipeline=LOAD, **kwargs)
    assert len(ds) == 3
    assert ds.metainfo['classes'][0] == 'road'
    assert len(ds.metainfo['classes']) == 19
    seen = set()
    for i in range(len(ds)):
        out = ds[i]
        lbl_path, image, label = expected[out['img_path']]
        assert out['seg_map_path'] == lbl_path
        np.testing.assert_array_equal(out['gt_seg_map'], label)
        if name == 'mapillary':  # JPEG: lossy
            assert np.abs(out['img'].astype(int) - image).mean() < 8
        else:
            np.testing.assert_array_equal(out['img'], image)
        seen.add(out['img_path'])
    assert seen == set(expected)


def test_cityscapes_train_split_without_labels(tmp_path):
    root = str(tmp_path)
    write_cityscapes(root, 2, split='train')
    ds = DDBCityscapesDataset(
        data_root=root, pipeline=[dict(type='DDBLoadImageFromFile')],
        data_prefix=dict(img_path='leftImg8bit/train'))  # no labels
    assert len(ds) == 2
    assert ds[0]['img'].shape == (128, 256, 3)


def test_missing_data_root(tmp_path):
    root = str(tmp_path / 'not_there')
    with pytest.raises(DataError) as err:
        GTADataset(data_root=root, pipeline=[])
    assert osp.join(root, 'images') in str(err.value)


def test_missing_label_folder(tmp_path):
    root = str(tmp_path)
    write_png(osp.join(root, 'images', '00000.png'),
              np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError) as err:
        GTADataset(data_root=root, pipeline=[])
    assert osp.join(root, 'labels') in str(err.value)


def test_empty_split(tmp_path):
    root = str(tmp_path)
    os.makedirs(osp.join(root, 'leftImg8bit', 'val', 'city'))
    os.makedirs(osp.join(root, 'gtFine', 'val', 'city'))
    with pytest.raises(DataError) as err:
        DDBCityscapesDataset(data_root=root, pipeline=[], data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val'))
    assert osp.join(root, 'leftImg8bit', 'val') in str(err.value)
    assert 'empty' in str(err.value)


def test_image_without_label(tmp_path):
    root = write_gta(str(tmp_path), 3)
    os.remove(osp.join(root, 'labels', '00001_labelTrainIds.png'))
    with pytest.raises(DataError) as err:
        GTADataset(data_root=root, pipeline=[])
    msg = str(err.value)
    assert osp.join(root, 'images', '00001.png') in msg
    assert osp.join(root, 'labels', '00001_labelTrainIds.png') in msg


def test_label_without_image(tmp_path):
    root = write_cityscapes(str(tmp_path), 3)
    os.remove(osp.join(root, 'leftImg8bit', 'val', 'city',
                       'city_000000_000002_leftImg8bit.png'))
    with pytest.raises(DataError) as err:
        DDBCityscapesDataset(data_root=root, pipeline=[], data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val'))
    assert osp.join(root, 'gtFine', 'val', 'city',
                    'city_000000_000002_gtFine_labelTrainIds.png') \
        in str(err.value)


def load_pair(img_path, lbl_path, **kwargs):
    results = DDBLoadImageFromFile()(dict(img_path=img_path))
    results.update(seg_map_path=lbl_path, seg_fields=[],
                   reduce_zero_label=False)
    return DDBLoadAnnotations(**kwargs)(results)


@pytest.fixture
def pair(tmp_path):
    root = write_gta(str(tmp_path), 1)
    return (osp.join(root, 'images', '00000.png'),
            osp.join(root, 'labels', '00000_labelTrainIds.png'))


def test_valid_labels_load(pair):
    img_path, lbl_path = pair
    label = np.arange(128 * 256).reshape(128, 256) % 20
    label[label == 19] = 255  # every value of 0..18 and 255
    write_png(lbl_path, label.astype(np.uint8))
    out = load_pair(img_path, lbl_path)
    np.testing.assert_array_equal(out['gt_seg_map'], label)


@pytest.mark.parametrize('bad', [19, 33, 254])
def test_label_values_outside_train_ids(pair, bad):
    img_path, lbl_path = pair
    label = cv2.imread(lbl_path, cv2.IMREAD_UNCHANGED)
    label[5:9, 5:9] = bad
    write_png(lbl_path, label)
    with pytest.raises(DataError) as err:
        load_pair(img_path, lbl_path)
    assert lbl_path in str(err.value)
    assert str(bad) in str(err.value)


def test_colour_label_is_refused(pair):
    img_path, lbl_path = pair
    write_png(lbl_path, np.zeros((128, 256, 3), np.uint8) + [0, 1, 2])
    with pytest.raises(DataError) as err:
        load_pair(img_path, lbl_path)
    assert lbl_path in str(err.value)


def test_size_mismatch(pair):
    img_path, lbl_path = pair
    small = np.random.default_rng(0).integers(0, 19, (64, 128)).astype(
        np.uint8)
    write_png(lbl_path, small)
    with pytest.raises(DataError) as err:
        load_pair(img_path, lbl_path)
    assert lbl_path in str(err.value) and img_path in str(err.value)
    assert '128x64' in str(err.value) and '256x128' in str(err.value)
    out = load_pair(img_path, lbl_path, size_mismatch='resize')
    # nearest neighbour at scale 2: every label pixel becomes a 2x2 block
    np.testing.assert_array_equal(out['gt_seg_map'],
                                  small.repeat(2, 0).repeat(2, 1))


def test_size_mismatch_option_is_checked():
    with pytest.raises(ValueError):
        DDBLoadAnnotations(size_mismatch='crop')


def png_bytes():
    ok, buf = cv2.imencode('.png', np.full((128, 256, 3), 77, np.uint8))
    return buf.tobytes()


@pytest.mark.parametrize('content', ['truncated', 'garbage', 'empty'])
def test_unreadable_image(pair, content):
    img_path, lbl_path = pair
    data = dict(truncated=png_bytes()[:300], garbage=b'\x89PNG not really',
                empty=b'')[content]
    with open(img_path, 'wb') as f:
        f.write(data)
    with pytest.raises(DataError) as err:
        load_pair(img_path, lbl_path)
    assert img_path in str(err.value)
    # the tools print one line of it: that line still names the file
    assert img_path in one_line(err.value)


def test_unreadable_label(pair):
    img_path, lbl_path = pair
    with open(lbl_path, 'wb') as f:
        f.write(b'garbage')
    with pytest.raises(DataError) as err:
        load_pair(img_path, lbl_path)
    assert lbl_path in one_line(err.value)


def test_error_in_a_loader_worker_keeps_the_file_name(pair):
    img_path, _ = pair
    with open(img_path, 'wb') as f:
        f.write(b'')
    ds = GTADataset(data_root=osp.dirname(osp.dirname(img_path)),
                    pipeline=LOAD)
    loader = DataLoader(ds, batch_size=1, num_workers=1,
                        collate_fn=lambda x: x)
    with pytest.raises(Exception) as err:
        next(iter(loader))
    line = one_line(err.value)
    assert img_path in line
    assert line.startswith('cannot read image')
