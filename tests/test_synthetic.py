"""Tests of the built-in synthetic domain shift (the package mmseg_ddb/datasets/synthetic)."""
import json
import multiprocessing
import os
import re

import cv2
import numpy as np
import pytest

from mmseg_ddb.datasets import synthetic
from mmseg_ddb.datasets.synthetic import (
    CLASSES,
    META_FILE,
    ensure_synthetic,
    generate_synthetic,
    render_scene,
)

SMALL = dict(num_source=3, num_target_train=2, num_target_val=2, num_source_val=1,
             height=32, width=64,
             progress=False)


def _render(seed, domain, height=128, width=256):
    return render_scene(np.random.default_rng(seed), height, width, domain)


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, names in os.walk(root) for f in names)


@pytest.fixture(scope='module')
def stats():
    """Per-domain class pixel frequencies (per image) and mean colours over 50 independent
    scenes each."""
    out = {}
    for domain, offset in (('source', 0), ('target', 10_000)):
        freqs, colour_sums = [], np.zeros((256, 3))
        for i in range(50):
            img, label = _render(offset + i, domain)
            freqs.append(np.bincount(label.ravel(), minlength=256) / label.size)
            for c in np.unique(label):
                colour_sums[c] += img[label == c].astype(float).sum(0)
        freqs = np.array(freqs)
        out[domain] = dict(per_image=freqs, freq=freqs.mean(0),
                           colour=colour_sums / np.maximum(freqs.sum(0) * label.size, 1)[:, None])
    return out


def test_render_is_deterministic():
    for domain in ('source', 'target'):
        img_a, lbl_a = _render(7, domain)
        img_b, lbl_b = _render(7, domain)
        np.testing.assert_array_equal(img_a, img_b)
        np.testing.assert_array_equal(lbl_a, lbl_b)
        img_c, lbl_c = _render(8, domain)
        assert not np.array_equal(lbl_a, lbl_c)
        assert not np.array_equal(img_a, img_c)
    assert img_a.shape == (128, 256, 3) and img_a.dtype == np.uint8
    assert lbl_a.shape == (128, 256) and lbl_a.dtype == np.uint8


def test_render_rejects_unknown_domain():
    with pytest.raises(ValueError, match='domain'):
        render_scene(np.random.default_rng(0), 64, 128, 'real')


def test_geometry_does_not_depend_on_the_domain():
    """The same generator state gives the same labels in both looks, but other pixels."""
    img_s, lbl_s = _render(3, 'source')
    img_t, lbl_t = _render(3, 'target')
    np.testing.assert_array_equal(lbl_s, lbl_t)
    assert np.abs(img_s.astype(int) - img_t.astype(int)).mean() > 20


def test_labels_are_train_ids_and_diverse():
    present = set()
    for seed in range(10):
        for domain in ('source', 'target'):
            present |= set(np.unique(_render(seed, domain)[1]).tolist())
    assert present <= set(range(19)) | {255}
    assert len(present - {255}) >= 12
    assert 255 in present                                 # unlabelled pixels, as in real data


def test_layout_is_street_like(stats):
    freq = stats['source']['freq']
    # the big classes of a street scene dominate; thin things are rare but there
    for cls, lo, hi in (('road', 0.2, 0.5), ('building', 0.1, 0.4), ('sky', 0.03, 0.25),
                        ('vegetation', 0.03, 0.2), ('car', 0.02, 0.12), ('pole', 0.003, 0.05),
                        ('person', 0.001, 0.02)):
        assert lo < freq[CLASSES.index(cls)] < hi, cls
    rows = np.arange(128)[:, None]
    _, label = _render(0, 'source')
    assert rows.repeat(256, 1)[label == 10].mean() < rows.repeat(256, 1)[label == 0].mean()


def test_label_statistics_agree_across_domains(stats):
    """Independent scenes of the two domains: class frequencies agree within sampling error
    (four standard errors; the images are fixed, so this cannot flake)."""
    src, tgt = stats['source']['per_image'], stats['target']['per_image']
    diff = np.abs(src.mean(0) - tgt.mean(0))
    stderr = np.sqrt(src.var(0) / len(src) + tgt.var(0) / len(tgt))
    bad = {CLASSES[c] if c < 19 else c: (round(d, 4), round(e, 4))
           for c, (d, e) in enumerate(zip(diff, stderr)) if d > 4 * e + 0.002}
    assert not bad
    assert stderr.max() < 0.03                   # enough scenes for the check to mean something


def test_appearance_differs_across_domains(stats):
    src, tgt = stats['source']['colour'], stats['target']['colour']
    for cls in ('road', 'sidewalk', 'vegetation', 'sky', 'car', 'terrain'):
        c = CLASSES.index(cls)
        assert np.linalg.norm(src[c] - tgt[c]) > 15, cls
    big = [CLASSES.index(c) for c in ('road', 'sidewalk', 'building', 'vegetation', 'sky')]
    assert np.linalg.norm(src[big] - tgt[big], axis=1).mean() > 40
    # ... while within each domain the big classes keep distinct colours
    for colours in (src, tgt):
        for i, a in enumerate(big):
            for b in big[i + 1:]:
                assert np.linalg.norm(colours[a] - colours[b]) > 20, (CLASSES[a], CLASSES[b])


def test_target_camera_is_flatter_and_noisier():
    """Same scenes (same labels), so only the camera differs: less contrast, more noise."""
    def sky_noise(img, label):     # residual of a median filter inside the (smooth) sky
        sky = cv2.erode((label == CLASSES.index('sky')).astype(np.uint8), np.ones((5, 5)))
        residual = img.astype(float) - cv2.medianBlur(img, 3).astype(float)
        return residual[sky > 0].std()

    src = [_render(s, 'source') for s in range(5)]
    tgt = [_render(s, 'target') for s in range(5)]
    assert np.mean([i.std() for i, _ in src]) > 1.15 * np.mean([i.std() for i, _ in tgt])
    assert np.mean([sky_noise(*x) for x in tgt]) > 1.5 * np.mean([sky_noise(*x) for x in src])


def test_generate_layout_and_counts(tmp_path):
    root = str(tmp_path / 'synthetic')
    meta = generate_synthetic(root, **SMALL)
    assert meta['counts'] == dict(source=3, target_train=2, target_val=2, source_val=1)
    assert meta['args']['seed'] == 0 and meta['version'] == synthetic.GENERATOR_VERSION
    files = _files(root)
    assert files == sorted(
        [f'gta/images/{i:05d}.png' for i in range(3)]
        + [f'gta/labels/{i:05d}_labelTrainIds.png' for i in range(3)]
        + ['gta_val/gta/images/00000.png', 'gta_val/gta/labels/00000_labelTrainIds.png']
        + [f'cityscapes/leftImg8bit/train/synthtown/synthtown_000000_{i:06d}_leftImg8bit.png'
           for i in range(2)]
        + [f'cityscapes/gtFine/train/synthtown/synthtown_000000_{i:06d}_gtFine_labelTrainIds.png'
           for i in range(2)]
        + [f'cityscapes/leftImg8bit/val/synthville/synthville_000000_{i:06d}_leftImg8bit.png'
           for i in range(2)]
        + [f'cityscapes/gtFine/val/synthville/synthville_000000_{i:06d}_gtFine_labelTrainIds.png'
           for i in range(2)]
        + [META_FILE])
    assert sorted(os.listdir(tmp_path)) == ['synthetic', 'synthetic.lock']   # no temp folders
    img = cv2.imread(os.path.join(root, 'gta/images/00000.png'), cv2.IMREAD_UNCHANGED)
    label = cv2.imread(os.path.join(root, 'gta/labels/00000_labelTrainIds.png'),
                       cv2.IMREAD_UNCHANGED)
    assert img.shape == (32, 64, 3) and label.shape == (32, 64) and label.dtype == np.uint8
    # the files hold what render_scene makes (RGB on disk, labels unchanged)
    ref_img, ref_label = render_scene(synthetic._image_rng(0, 'source', 0), 32, 64, 'source')
    np.testing.assert_array_equal(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), ref_img)
    np.testing.assert_array_equal(label, ref_label)
    with open(os.path.join(root, META_FILE)) as f:
        assert json.load(f) == meta


def test_cityscapes_naming_pairs_images_and_labels(tmp_path):
    root = str(tmp_path / 'syn')
    generate_synthetic(root, **SMALL)
    pattern = re.compile(r'^(synthtown|synthville)_000000_(\d{6})_leftImg8bit\.png$')
    for split, city in (('train', 'synthtown'), ('val', 'synthville')):
        names = sorted(os.listdir(os.path.join(root, 'cityscapes/leftImg8bit', split, city)))
        assert names and all(pattern.match(n) for n in names)
        for name in names:
            label = name.replace('_leftImg8bit.png', '_gtFine_labelTrainIds.png')
            assert os.path.isfile(os.path.join(root, 'cityscapes/gtFine', split, city, label))


def test_same_seed_gives_identical_files_and_other_seed_does_not(tmp_path):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    generate_synthetic(a, **SMALL)
    generate_synthetic(b, **SMALL)
    generate_synthetic(c, **{**SMALL, 'seed': 1})
    for rel in _files(a):
        with open(os.path.join(a, rel), 'rb') as fa, open(os.path.join(b, rel), 'rb') as fb:
            assert fa.read() == fb.read(), rel
    with open(os.path.join(a, 'gta/images/00000.png'), 'rb') as fa, \
            open(os.path.join(c, 'gta/images/00000.png'), 'rb') as fc:
        assert fa.read() != fc.read()


def test_rendering_processes_write_the_same_files(tmp_path, monkeypatch):
    """workers=3 renders in forked processes (none in this one) and writes byte for byte
    the files one process writes, the generic look's category labels included."""
    from mmseg_ddb.datasets.synthetic import generate
    args = dict(SMALL, num_source=12, num_generic=4, height=16, width=32)
    generate_synthetic(str(tmp_path / 'one'), **args, workers=1)
    writers = tmp_path / 'writers.txt'
    write_png = generate._write_png

    def recording(path, array):
        with open(writers, 'a') as f:
            f.write(f'{os.getpid()}\n')
        write_png(path, array)
    monkeypatch.setattr(generate, '_write_png', recording)
    generate_synthetic(str(tmp_path / 'many'), **args, workers=3)
    pids = writers.read_text().split()
    assert len(pids) == 2 * (12 + 2 + 2 + 1 + 4) and str(os.getpid()) not in pids
    one, many = str(tmp_path / 'one'), str(tmp_path / 'many')
    assert _files(one) == _files(many)
    for rel in _files(one):
        with open(os.path.join(one, rel), 'rb') as fa, open(os.path.join(many, rel), 'rb') as fb:
            assert fa.read() == fb.read(), rel
    with pytest.raises(ValueError, match='workers must be an integer >= 1, got 0'):
        generate_synthetic(str(tmp_path / 'none'), **args, workers=0)


def _default_workers_in_a_daemon(queue):
    from mmseg_ddb.datasets.synthetic.generate import default_workers
    queue.put(default_workers())


def test_default_workers_is_one_in_a_daemonic_process():
    """A daemonic process (a pool's worker) may not start processes: it renders alone."""
    from mmseg_ddb.datasets.synthetic.generate import default_workers
    assert default_workers() == min(8, len(os.sched_getaffinity(0)))
    ctx = multiprocessing.get_context('fork')
    queue = ctx.Queue()
    proc = ctx.Process(target=_default_workers_in_a_daemon, args=(queue,), daemon=True)
    proc.start()
    assert queue.get(timeout=60) == 1
    proc.join(60)


def test_second_call_is_a_no_op(tmp_path):
    root = str(tmp_path / 'syn')
    meta = generate_synthetic(root, **SMALL)
    path = os.path.join(root, 'gta/images/00000.png')
    before = os.stat(path)
    assert generate_synthetic(root, **SMALL) == meta
    assert ensure_synthetic(root, **SMALL) == meta
    after = os.stat(path)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_mismatched_arguments_raise(tmp_path):
    root = str(tmp_path / 'syn')
    generate_synthetic(root, **SMALL)
    with pytest.raises(ValueError, match='delete the folder or choose another root'):
        generate_synthetic(root, **{**SMALL, 'num_source': 4})
    with pytest.raises(ValueError, match='delete the folder or choose another root'):
        ensure_synthetic(root, **{**SMALL, 'seed': 3})


def test_interrupted_run_is_redone(tmp_path):
    root = str(tmp_path / 'syn')
    meta = generate_synthetic(root, **SMALL)
    expected = _files(root)
    os.remove(os.path.join(root, META_FILE))                 # as if killed before the end
    os.remove(os.path.join(root, 'gta/images/00001.png'))
    os.makedirs(str(tmp_path / 'syn.tmp-99999'))              # a crashed run's temp folder
    assert generate_synthetic(root, **SMALL) == meta
    assert _files(root) == expected
    assert not os.path.exists(str(tmp_path / 'syn.tmp-99999'))


def test_foreign_folder_is_not_deleted(tmp_path):
    root = tmp_path / 'data'
    root.mkdir()
    (root / 'my_results.txt').write_text('precious')
    with pytest.raises(ValueError, match='choose another root'):
        generate_synthetic(str(root), **SMALL)
    assert (root / 'my_results.txt').read_text() == 'precious'


def _generate_in_child(root, queue):
    queue.put(generate_synthetic(root, **SMALL))


def test_concurrent_callers_generate_once(tmp_path):
    root = str(tmp_path / 'syn')
    ctx = multiprocessing.get_context('fork')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_generate_in_child, args=(root, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    metas = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert metas[0] == metas[1]
    assert sorted(os.listdir(tmp_path)) == ['syn', 'syn.lock']
    assert len(_files(root)) == 2 * (3 + 2 + 2 + 1) + 1


def test_cli_generates_and_writes_a_preview(tmp_path):
    root, preview = str(tmp_path / 'syn'), str(tmp_path / 'preview.png')
    synthetic.main([root, '--num-source', '4', '--num-target-train', '1', '--num-target-val',
                    '4', '--height', '32', '--width', '64', '--no-progress', '--preview',
                    preview])
    assert json.load(open(os.path.join(root, META_FILE)))['counts']['source'] == 4
    grid = cv2.imread(preview, cv2.IMREAD_COLOR)
    assert grid.shape == (4 * 32, 4 * 64, 3)                # source, labels, target, labels


def test_module_does_not_import_mmseg(tmp_path):
    """The synthetic package alone needs no mmseg, mmengine, mmcv or torch: imported (and run:
    a generation with the generic look, whose imports are lazy) with empty stand-ins for its
    parent packages, so that the __init__ files of mmseg_ddb, mmseg_ddb.datasets and
    mmseg_ddb.utils (which import all of these) do not run."""
    import subprocess
    import sys
    pkg = os.path.dirname(os.path.dirname(synthetic.__path__[0]))     # .../mmseg_ddb
    code = ('import sys, types\n'
            f'pkg = {pkg!r}\n'
            'for name, sub in (("mmseg_ddb", ""), ("mmseg_ddb.datasets", "datasets"),\n'
            '                  ("mmseg_ddb.utils", "utils")):\n'
            '    stub = types.ModuleType(name)\n'
            '    stub.__path__ = [pkg + "/" + sub if sub else pkg]\n'
            '    sys.modules[name] = stub\n'
            'from mmseg_ddb.datasets import synthetic\n'
            'assert synthetic.__file__.startswith(pkg), synthetic.__file__\n'
            f'synthetic.generate_synthetic({str(tmp_path / "syn")!r}, num_source=1,\n'
            '    num_target_train=1, num_target_val=1, num_source_val=0, num_generic=1,\n'
            '    height=16, width=32, progress=False)\n'
            'print(sorted({m.split(".")[0] for m in sys.modules}\n'
            '             & {"mmseg", "mmengine", "mmcv", "torch"}))\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[]'


# -- the generic look and the thing scale ----------------------------------------------------
def test_generic_look_keeps_the_geometry_and_randomises_class_colours():
    """Same generator state: the labels of the generic look are those of the other looks; the
    colour of a class varies across images far more than in the source look (colour says
    nothing about the class)."""
    img_s, lbl_s = _render(3, 'source')
    img_g, lbl_g = _render(3, 'generic')
    np.testing.assert_array_equal(lbl_s, lbl_g)
    road = CLASSES.index('road')
    spread = {}
    for domain in ('source', 'generic'):
        means = [img[label == road].mean(0) for img, label in
                 (_render(100 + i, domain) for i in range(12))]
        spread[domain] = np.std(means, axis=0).mean()
    assert spread['generic'] > 3 * spread['source'], spread


def test_thing_scale_enlarges_thin_and_small_things_only():
    def counts(scale):
        total = np.zeros(256)
        for seed in range(8):
            label = render_scene(np.random.default_rng(seed), 128, 256, 'source', scale)[1]
            total += np.bincount(label.ravel(), minlength=256)
        return total
    one, two = counts(1.0), counts(2.0)
    for seed in range(2):      # 1.0 is the default, to the pixel
        a = render_scene(np.random.default_rng(seed), 64, 128, 'target')
        b = render_scene(np.random.default_rng(seed), 64, 128, 'target', 1.0)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # twice the width (poles: only the width) and, but for poles, twice the height
    for name, factor in (('pole', 1.3), ('traffic light', 1.8), ('traffic sign', 1.8),
                         ('person', 1.8), ('rider', 1.8), ('bicycle', 1.8)):
        c = CLASSES.index(name)
        assert two[c] > factor * one[c], (name, one[c], two[c])
    for name in ('road', 'sky', 'car'):                    # drawn as before (less occluded)
        c = CLASSES.index(name)
        assert abs(two[c] - one[c]) < 0.15 * one[c], (name, one[c], two[c])


def test_category_table_is_the_official_one():
    lut = synthetic.category_lut()
    cats = synthetic.CATEGORIES
    expect = {'road': 'flat', 'sidewalk': 'flat', 'building': 'construction',
              'wall': 'construction', 'fence': 'construction', 'pole': 'object',
              'traffic light': 'object', 'traffic sign': 'object', 'vegetation': 'nature',
              'terrain': 'nature', 'sky': 'sky', 'person': 'human', 'rider': 'human',
              'car': 'vehicle', 'truck': 'vehicle', 'bus': 'vehicle', 'train': 'vehicle',
              'motorcycle': 'vehicle', 'bicycle': 'vehicle'}
    assert [cats[lut[i]] for i in range(19)] == [expect[c] for c in CLASSES]
    assert lut[255] == 255 and (lut[19:255] == 255).all()


def test_generic_split_is_written_with_category_labels(tmp_path):
    root = str(tmp_path / 'syn')
    meta = generate_synthetic(root, **SMALL, num_generic=2, thing_scale=150)
    assert meta['counts']['generic'] == 2
    assert meta['args']['num_generic'] == 2 and meta['args']['thing_scale'] == 150
    for i in range(2):
        img = cv2.imread(os.path.join(root, f'generic/gta/images/{i:05d}.png'))
        label = cv2.imread(os.path.join(root, f'generic/gta/labels/{i:05d}_labelTrainIds.png'),
                           cv2.IMREAD_UNCHANGED)
        ref_img, ref_label = render_scene(synthetic._image_rng(0, 'generic', i), 32, 64,
                                          'generic', 1.5)
        np.testing.assert_array_equal(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), ref_img)
        np.testing.assert_array_equal(label, synthetic.category_lut()[ref_label])
        assert set(np.unique(label)) <= set(range(7)) | {255}
    # the other splits are those of a root made without the generic look, at that scale
    src = cv2.imread(os.path.join(root, 'gta/labels/00000_labelTrainIds.png'),
                     cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(
        src, render_scene(synthetic._image_rng(0, 'source', 0), 32, 64, 'source', 1.5)[1])
    # roots made without these arguments do not record them
    plain = generate_synthetic(str(tmp_path / 'plain'), **SMALL)
    assert 'generic' not in plain['counts'] and 'num_generic' not in plain['args']
    assert 'thing_scale' not in plain['args']
