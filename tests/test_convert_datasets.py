"""The dataset converters in tools/convert_datasets (METHOD.md section 3).

Each test builds a few 16x8 files in the real raw layout, runs the tool's
``main`` and checks every output pixel against the mapping built here from
cityscapesscripts' label table (or, for SYNTHIA and Mapillary, from the rules
written out by hand).
"""
import importlib.util
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as CS_LABELS
from cityscapesscripts.helpers.labels import trainId2label
from conftest import REPO  # noqa: E402
from PIL import Image

if REPO not in sys.path:
    sys.path.insert(0, REPO)

from mmseg_ddb import convert  # noqa: E402
from mmseg_ddb.utils import fileio  # noqa: E402

H, W = 8, 16

#: Cityscapes label id -> train id, from cityscapesscripts.
CS_ID_TO_TRAIN = {
    lab.id: lab.trainId
    for lab in CS_LABELS if lab.id >= 0 and not lab.ignoreInEval
}
#: METHOD.md section 3, GTA5 / Synscapes.
METHOD_GTA_MAPPING = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18
}
#: METHOD.md section 3, SYNTHIA.
METHOD_SYNTHIA_MAPPING = {
    3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9, 1: 10,
    10: 11, 17: 12, 8: 13, 18: 14, 19: 15, 20: 16, 12: 17, 11: 18
}
#: Mapillary readable names and the train id the METHOD.md rules give them.
MAPILLARY_EXPECTED = {
    'Bird': 255, 'Curb': 1, 'Curb Cut': 1, 'Fence': 4, 'Wall': 3,
    'Bike Lane': 0, 'Crosswalk - Plain': 0, 'Parking': 0,
    'Pedestrian Area': 1, 'Rail Track': 255, 'Road': 0, 'Service Lane': 0,
    'Sidewalk': 1, 'Building': 2, 'Person': 11, 'Bicyclist': 12,
    'Motorcyclist': 12, 'Other Rider': 12, 'Lane Marking - Crosswalk': 0,
    'Lane Marking - General': 0, 'Sky': 10, 'Terrain': 9, 'Vegetation': 8,
    'Street Light': 5, 'Pole': 5, 'Traffic Sign Frame': 7, 'Utility Pole': 5,
    'Traffic Light': 6, 'Traffic Sign (Back)': 7, 'Traffic Sign (Front)': 7,
    'Bicycle': 18, 'Bus': 15, 'Car': 13, 'Motorcycle': 17, 'On Rails': 16,
    'Truck': 14, 'Car Mount': 255, 'Ego Vehicle': 255, 'Guard Rail': 255,
    'Caravan': 255, 'Unlabeled': 255,
}


def load_tool(name):
    """Import tools/convert_datasets/<name>.py (tools/ is not a package)."""
    mod_name = f'_convert_datasets_{name}'
    if mod_name not in sys.modules:
        path = osp.join(REPO, 'tools', 'convert_datasets', f'{name}.py')
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module  # workers pickle its functions by name
        spec.loader.exec_module(module)
    return sys.modules[mod_name]


def mapped(ids, mapping):
    """Pixel-wise ``mapping.get(v, 255)``, written independently of the LUTs."""
    out = np.full(ids.shape, 255, np.uint8)
    for src, dst in mapping.items():
        out[ids == src] = dst
    return out


def read(path):
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert label is not None, path
    return label


def write_rgb(path, rng, size=(H, W)):
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def write_palette_label(path, ids):
    """A palette ('P') PNG whose indices are ``ids``, like GTA5 / Mapillary."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = Image.frombytes('P', (ids.shape[1], ids.shape[0]),
                          ids.astype(np.uint8).tobytes())
    img.putpalette(list(np.random.default_rng(0).integers(0, 256, 768)))
    img.save(path)


def expected_stats(labels_by_file):
    """The three RCS files for {file: train-id array}, computed directly."""
    samples, by_file, with_class = [], {}, {}
    for f, label in labels_by_file.items():
        counts = {str(c): int((label == c).sum())
                  for c in range(19) if (label == c).any()}
        samples.append({'file': f, **counts})
        by_file[f] = counts
        for c, n in counts.items():
            with_class.setdefault(c, []).append([f, n])
    return samples, by_file, with_class


def check_stats(out_dir, labels_by_file):
    samples, by_file, with_class = expected_stats(labels_by_file)
    with open(osp.join(out_dir, 'sample_class_stats.json')) as f:
        assert json.load(f) == samples
    with open(osp.join(out_dir, 'sample_class_stats_dict.json')) as f:
        assert json.load(f) == by_file
    with open(osp.join(out_dir, 'samples_with_class.json')) as f:
        got = json.load(f)
    assert got == with_class
    assert list(got) == sorted(got, key=int)


def assert_error(capsys, rc, *fragments):
    """Exit code 2, one ``error:`` line naming ``fragments``, no traceback."""
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert str(fragment) in lines[0], lines[0]
    assert 'Traceback' not in err
    return lines[0]


# ---------------------------------------------------------------------------
def test_tables_come_from_cityscapesscripts():
    assert CS_ID_TO_TRAIN == METHOD_GTA_MAPPING
    assert convert.CITYSCAPES_CLASSES == tuple(
        trainId2label[i].name for i in range(19))
    assert convert.CITYSCAPES_CLASSES[:2] == ('road', 'sidewalk')
    assert convert.CITYSCAPES_CLASSES[-1] == 'bicycle'
    assert convert.CITYSCAPES_PALETTE[0] == (128, 64, 128)
    lut = convert.id_to_train_id_lut()
    assert lut.dtype == np.uint8 and lut.shape == (256, )
    ids = np.arange(256)
    np.testing.assert_array_equal(lut, mapped(ids, METHOD_GTA_MAPPING))


def test_mapillary_mapping_rules():
    names = list(MAPILLARY_EXPECTED)
    lut = load_tool('mapillary2cityscape').mapillary_to_trainid(names)
    assert lut.dtype == np.uint8 and lut.shape == (256, )
    assert dict(zip(names, lut[:len(names)].tolist())) == MAPILLARY_EXPECTED
    assert (lut[len(names):] == 255).all()


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / 'x.png'

    def killed_half_way(tmp):
        with open(tmp, 'wb') as f:
            f.write(b'\x89PNG half')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_save(str(target), killed_half_way)
    assert os.listdir(tmp_path) == []
    convert.atomic_write_png(str(target), np.full((2, 3), 7, np.uint8))
    fileio.write_json_atomic(str(tmp_path / 'x.json'), {'a': [1]})
    assert sorted(os.listdir(tmp_path)) == ['x.json', 'x.png']
    assert (read(target) == 7).all() and read(target).shape == (2, 3)
    assert json.loads((tmp_path / 'x.json').read_text()) == {'a': [1]}


# ---------------------------------------------------------------------------
# GTA5
# ---------------------------------------------------------------------------
GTA_IDS = np.array(sorted(set(range(36)) | {255}))  # incl. 0, 4, 34, 35, 255


def make_gta(root, n=3):
    rng = np.random.default_rng(1)
    raw = {}
    for i in range(1, n + 1):
        stem = f'{i:05d}'
        ids = rng.choice(GTA_IDS, (H, W))
        write_palette_label(osp.join(root, 'labels', f'{stem}.png'), ids)
        write_rgb(osp.join(root, 'images', f'{stem}.png'), rng)
        raw[stem] = ids
    return raw


def gta_out(root, stem):
    return osp.join(str(root), 'labels', f'{stem}_labelTrainIds.png')


def test_gta_converts_labels_and_writes_rcs_stats(tmp_path, capsys):
    raw = make_gta(tmp_path)
    # a converted file already in labels/ is not an input
    cv2.imwrite(str(tmp_path / 'labels' / '00009_labelTrainIds.png'),
                np.zeros((H, W), np.uint8))
    assert load_tool('gta').main([str(tmp_path), '--nproc', '1']) == 0
    expected = {}
    for stem, ids in raw.items():
        label = read(gta_out(tmp_path, stem))
        assert label.dtype == np.uint8 and label.shape == (H, W)
        np.testing.assert_array_equal(label, mapped(ids, CS_ID_TO_TRAIN))
        expected[gta_out(tmp_path, stem)] = label
    assert not (tmp_path / 'labels' /
                '00009_labelTrainIds_labelTrainIds.png').exists()
    check_stats(tmp_path, expected)
    assert 'converted 3 labels' in capsys.readouterr().out


def test_gta_resumes_and_ignores_stale_temp_files(tmp_path, capsys):
    raw = make_gta(tmp_path)
    gta = load_tool('gta')
    assert gta.main([str(tmp_path), '--nproc', '2']) == 0
    # a finished output is kept as it is (we mark it to see that) ...
    cv2.imwrite(gta_out(tmp_path, '00001'), np.zeros((H, W), np.uint8))
    # ... and a run killed while writing 00002 left only its temp file
    os.remove(gta_out(tmp_path, '00002'))
    stale = tmp_path / 'labels' / '.tmp-99999-00002_labelTrainIds.png'
    stale.write_bytes(b'\x89PNG half')
    capsys.readouterr()
    out_dir = tmp_path / 'stats'
    assert gta.main([str(tmp_path), '--nproc', '2', '-o', str(out_dir)]) == 0
    assert 'converted 1 labels, 2 already done' in capsys.readouterr().out
    assert (read(gta_out(tmp_path, '00001')) == 0).all()
    np.testing.assert_array_equal(read(gta_out(tmp_path, '00002')),
                                  mapped(raw['00002'], CS_ID_TO_TRAIN))
    check_stats(out_dir, {
        gta_out(tmp_path, s): read(gta_out(tmp_path, s)) for s in raw})
    assert not any('.tmp-' in name for name in os.listdir(out_dir))


@pytest.mark.parametrize('case', [
    'no_root', 'no_labels', 'no_files', 'corrupt', 'rgb_label', 'size',
    'no_image'
])
def test_gta_bad_input_fails_with_one_line(tmp_path, capsys, case):
    root = tmp_path / 'gta'
    make_gta(root, n=2)
    label = root / 'labels' / '00002.png'
    image = root / 'images' / '00002.png'
    culprit = {'no_root': tmp_path / 'missing', 'no_labels': root / 'labels',
               'no_files': root / 'labels'}.get(case, label)
    if case == 'no_root':
        root = culprit
    elif case == 'no_labels':
        for f in os.listdir(culprit):
            os.remove(culprit / f)
        os.rmdir(culprit)
    elif case == 'no_files':
        for f in os.listdir(culprit):
            os.remove(culprit / f)
    elif case == 'corrupt':
        label.write_bytes(label.read_bytes()[:40])
    elif case == 'rgb_label':
        write_rgb(str(label), np.random.default_rng(0))
    elif case == 'size':
        write_palette_label(str(label), np.zeros((H + 1, W), np.uint8))
    elif case == 'no_image':
        os.remove(image)
    rc = load_tool('gta').main([str(root), '--nproc', '2'])
    fragments = [culprit] + ([image] if case in ('size', 'no_image') else [])
    assert_error(capsys, rc, *fragments)
    if case in ('corrupt', 'rgb_label', 'size', 'no_image'):
        assert not osp.exists(gta_out(root, '00002'))
        assert not any(f.startswith('.tmp-')
                       for f in os.listdir(root / 'labels'))


def test_gta_size_check_can_be_skipped(tmp_path):
    raw = make_gta(tmp_path, n=1)
    os.remove(tmp_path / 'images' / '00001.png')
    assert load_tool('gta').main(
        [str(tmp_path), '--nproc', '1', '--no-size-check']) == 0
    np.testing.assert_array_equal(read(gta_out(tmp_path, '00001')),
                                  mapped(raw['00001'], CS_ID_TO_TRAIN))


# ---------------------------------------------------------------------------
# Synscapes
# ---------------------------------------------------------------------------
def test_synscapes_writes_train_ids_colours_and_stats(tmp_path):
    rng = np.random.default_rng(2)
    raw = {}
    for n in ('1', '2', '10'):
        ids = rng.choice(GTA_IDS, (H, W)).astype(np.uint8)
        os.makedirs(tmp_path / 'img' / 'class', exist_ok=True)
        cv2.imwrite(str(tmp_path / 'img' / 'class' / f'{n}.png'), ids)
        write_rgb(str(tmp_path / 'img' / 'rgb' / f'{n}.png'), rng)
        raw[n] = ids
    # not an input: only img/class/<digits>.png are
    cv2.imwrite(str(tmp_path / 'img' / 'class' / 'notes.png'), raw['1'])
    out_dir = tmp_path / 'out'
    assert load_tool('synscapes').main(
        [str(tmp_path), '--nproc', '2', '-o', str(out_dir)]) == 0
    class_dir = tmp_path / 'img' / 'class'
    expected = {}
    for n, ids in raw.items():
        train_ids = mapped(ids, CS_ID_TO_TRAIN)
        out = str(class_dir / f'{n}_gt_labelTrainIds.png')
        np.testing.assert_array_equal(read(out), train_ids)
        color = np.zeros((H, W, 3), np.uint8)
        for t in range(19):
            color[train_ids == t] = trainId2label[t].color
        bgr = read(class_dir / f'{n}_gt_color.png')
        np.testing.assert_array_equal(bgr[:, :, ::-1], color)
        expected[out] = train_ids
    assert not (class_dir / 'notes_gt_labelTrainIds.png').exists()
    check_stats(out_dir, expected)  # in numeric order: 1, 2, 10


def test_synscapes_without_labels_fails(tmp_path, capsys):
    rc = load_tool('synscapes').main([str(tmp_path), '--nproc', '1'])
    assert_error(capsys, rc, tmp_path / 'img' / 'class')


# ---------------------------------------------------------------------------
# SYNTHIA
# ---------------------------------------------------------------------------
def test_synthia_reads_the_last_channel_of_16bit_labels(tmp_path, capsys):
    rng = np.random.default_rng(3)
    synthia_ids = np.array(list(range(25)) + [255, 256, 300, 1000])
    raw = {}
    for stem in ('0000000', '0000001'):
        label = rng.integers(0, 65536, (H, W, 3)).astype(np.uint16)
        label[:, :, 2] = rng.choice(synthia_ids, (H, W))
        os.makedirs(tmp_path / 'GT' / 'LABELS', exist_ok=True)
        assert cv2.imwrite(str(tmp_path / 'GT' / 'LABELS' / f'{stem}.png'),
                           label)
        write_rgb(str(tmp_path / 'RGB' / f'{stem}.png'), rng)
        raw[stem] = label[:, :, 2]
    assert load_tool('synthia').main([str(tmp_path), '--nproc', '1']) == 0
    expected = {}
    for stem, ids in raw.items():
        out = str(tmp_path / 'GT' / 'LABELS' / f'{stem}_labelTrainIds.png')
        label = read(out)
        assert label.dtype == np.uint8 and label.ndim == 2
        np.testing.assert_array_equal(label,
                                      mapped(ids, METHOD_SYNTHIA_MAPPING))
        expected[out] = label
    check_stats(tmp_path, expected)
    # a rerun converts nothing and does not take its outputs for inputs
    capsys.readouterr()
    assert load_tool('synthia').main([str(tmp_path), '--nproc', '1']) == 0
    assert 'converted 0 labels, 2 already done' in capsys.readouterr().out


def test_synthia_rejects_single_channel_labels(tmp_path, capsys):
    label = tmp_path / 'GT' / 'LABELS' / '0000000.png'
    os.makedirs(label.parent)
    cv2.imwrite(str(label), np.zeros((H, W), np.uint8))
    write_rgb(str(tmp_path / 'RGB' / '0000000.png'), np.random.default_rng(0))
    rc = load_tool('synthia').main([str(tmp_path), '--nproc', '1'])
    assert_error(capsys, rc, label)


# ---------------------------------------------------------------------------
# Cityscapes
# ---------------------------------------------------------------------------
def write_polygons(path, objects):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump({'imgHeight': H, 'imgWidth': W, 'objects': [
            {'label': name, 'polygon': poly} for name, poly in objects]}, f)


def test_cityscapes_rasterises_polygons_and_lists_splits(tmp_path, capsys):
    gt = tmp_path / 'gtFine'
    train_json = gt / 'train' / 'aachen' / 'aachen_000000_000019_gtFine_polygons.json'
    val_json = gt / 'val' / 'frankfurt' / 'frankfurt_000000_000294_gtFine_polygons.json'
    write_polygons(train_json, [
        ('sky', [[0, 0], [7, 0], [7, 3], [0, 3]]),
        ('static', [[8, 0], [9, 0], [9, 1], [8, 1]]),
        ('cargroup', [[13, 0], [15, 0], [15, 2], [13, 2]]),
        ('road', [[0, 4], [15, 4], [15, 7], [0, 7]]),
        ('car', [[10, 5], [12, 5], [12, 6], [10, 6]]),
        ('license plate', [[11, 5], [11, 5], [11, 6], [11, 6]]),
    ])
    write_polygons(val_json, [('building', [[0, 0], [15, 0], [15, 7], [0, 7]])])
    expected = np.full((H, W), 255, np.uint8)
    expected[0:4, 0:8] = 10
    expected[0:3, 13:16] = 13
    expected[4:8, :] = 0
    expected[5:7, 10:13] = 13
    cityscapes = load_tool('cityscapes')
    assert cityscapes.main([str(tmp_path), '--nproc', '2']) == 0
    out = str(train_json).replace('_polygons.json', '_labelTrainIds.png')
    assert out.endswith('aachen_000000_000019_gtFine_labelTrainIds.png')
    np.testing.assert_array_equal(read(out), expected)
    val_out = str(val_json).replace('_polygons.json', '_labelTrainIds.png')
    assert (read(val_out) == 2).all()
    assert (tmp_path / 'train.txt').read_text() == \
        'aachen/aachen_000000_000019\n'
    assert (tmp_path / 'val.txt').read_text() == \
        'frankfurt/frankfurt_000000_000294\n'
    assert not (tmp_path / 'test.txt').exists()
    assert not [f for f in os.listdir(train_json.parent) if f.startswith('.')]
    capsys.readouterr()
    assert cityscapes.main([str(tmp_path), '--nproc', '1']) == 0
    assert 'converted 0 labels, 2 already done' in capsys.readouterr().out


def test_cityscapes_unknown_label_fails(tmp_path, capsys):
    bad = tmp_path / 'gtFine' / 'train' / 'x' / 'x_0_0_gtFine_polygons.json'
    write_polygons(bad, [('flying saucer', [[0, 0], [3, 0], [3, 3]])])
    rc = load_tool('cityscapes').main([str(tmp_path), '--nproc', '1'])
    line = assert_error(capsys, rc, bad)
    assert 'flying saucer' in line
    assert os.listdir(bad.parent) == [bad.name]


# ---------------------------------------------------------------------------
# Mapillary
# ---------------------------------------------------------------------------
def make_mapillary(root):
    rng = np.random.default_rng(4)
    names = list(MAPILLARY_EXPECTED)
    with open(root / 'config.json', 'w') as f:
        json.dump({'labels': [
            {'name': f'x--{i}', 'readable': n} for i, n in enumerate(names)]},
            f)
    raw = {}
    for split, stems in (('training', ('a1', 'a2')), ('validation', ('b1', ))):
        for stem in stems:
            ids = rng.integers(0, len(names) + 3, (H, W))  # a few past the list
            write_palette_label(str(root / split / 'labels' / f'{stem}.png'), ids)
            write_rgb(str(root / split / 'images' / f'{stem}.jpg'), rng)
            raw[split, stem] = ids
    return names, raw


@pytest.mark.parametrize('train_id', [True, False])
def test_mapillary_maps_labels_to_cityscapes(tmp_path, capsys, train_id):
    names, raw = make_mapillary(tmp_path)
    save = tmp_path / 'save'
    argv = [str(tmp_path), str(save), '--nproc', '2']
    assert load_tool('mapillary2cityscape').main(
        argv + (['--train_id'] if train_id else [])) == 0
    table = capsys.readouterr().out
    assert 'Traffic Sign Frame' in table and 'Car Mount' in table
    index_to_train = {i: MAPILLARY_EXPECTED[n] for i, n in enumerate(names)}
    for (split, stem), ids in raw.items():
        sub = {'training': 'train', 'validation': 'val'}[split]
        train_ids = mapped(ids, index_to_train)
        if train_id:
            path = save / 'cityscapes_trainIdLabel' / sub / 'label' / f'{stem}.png'
            np.testing.assert_array_equal(read(path), train_ids)
        else:
            path = save / 'cityscapes_IdLabel' / sub / 'label' / f'{stem}.png'
            ids_expected = np.zeros((H, W), np.uint8)
            for t in range(19):
                ids_expected[train_ids == t] = trainId2label[t].id
            np.testing.assert_array_equal(read(path), ids_expected)


def test_mapillary_missing_validation_fails(tmp_path, capsys):
    make_mapillary(tmp_path)
    for f in os.listdir(tmp_path / 'validation' / 'labels'):
        os.remove(tmp_path / 'validation' / 'labels' / f)
    os.rmdir(tmp_path / 'validation' / 'labels')
    rc = load_tool('mapillary2cityscape').main(
        [str(tmp_path), str(tmp_path / 'save'), '--train_id', '--nproc', '1'])
    assert_error(capsys, rc, tmp_path / 'validation' / 'labels')


def test_mapillary_resize_halves_images_and_labels(tmp_path, capsys):
    rng = np.random.default_rng(5)
    img_dir, lbl_dir = tmp_path / 'img', tmp_path / 'lbl'
    images, labels = {}, {}
    for name in ('a.jpg', 'b.png'):
        write_rgb(str(img_dir / name), rng)
        images[name] = read(img_dir / name)
        stem = osp.splitext(name)[0]
        labels[stem] = rng.integers(0, 20, (H, W)).astype(np.uint8)
        os.makedirs(lbl_dir, exist_ok=True)
        cv2.imwrite(str(lbl_dir / f'{stem}.png'), labels[stem])
    dst_img, dst_lbl = tmp_path / 'half' / 'val_img', tmp_path / 'half' / 'val_label'
    tool = load_tool('mapillary_resize')
    argv = [str(img_dir), str(lbl_dir), str(dst_img), str(dst_lbl)]
    assert tool.main(argv + ['--nproc', '2']) == 0
    assert sorted(os.listdir(dst_img)) == ['a.jpg', 'b.png']
    assert read(dst_img / 'a.jpg').shape == (H // 2, W // 2, 3)
    np.testing.assert_array_equal(
        read(dst_img / 'b.png'),
        cv2.resize(images['b.png'], (W // 2, H // 2),
                   interpolation=cv2.INTER_CUBIC))
    for stem, label in labels.items():
        np.testing.assert_array_equal(read(dst_lbl / f'{stem}.png'),
                                      label[::2, ::2])
    # an image without its label is an error naming both
    write_rgb(str(img_dir / 'c.jpg'), rng)
    capsys.readouterr()
    rc = tool.main(argv + ['--nproc', '1'])
    assert_error(capsys, rc, img_dir / 'c.jpg', lbl_dir / 'c.png')
