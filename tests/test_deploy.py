"""Shipping a model: the published student-only file, the ONNX export checked
by onnxruntime (and evaluated through it), and video in and out; on the
synthetic configs' tiny networks."""
import datetime
import glob
import hashlib
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, cfg_option_args, tiny_options

import mmseg_ddb  # noqa: F401
from mmseg_ddb.apis import inference, init_segmentor
from mmseg_ddb.errors import ConfigError, ExportError

pytest.importorskip('onnxruntime', reason='the deploy extra: pip install -e ".[deploy]"')
from mmseg_ddb.apis.onnx_export import export_onnx  # noqa: E402

SYN = osp.join(REPO, 'configs', 'synthetic')
DLV2 = osp.join(SYN, 'source_only_synthetic.py')
MIT = osp.join(SYN, 'st_cu_daformer_mit-tiny_synthetic.py')
VIT = osp.join(SYN, 'st_cu_daformer_vit-tiny_synthetic.py')


def _weights(seed: int) -> dict:
    torch.manual_seed(seed)
    return init_segmentor(DLV2, None, 'cpu').state_dict()


@pytest.fixture(scope='module')
def layouts(tmp_path_factory):
    """Checkpoints of one tiny network in each layout, every model in them
    with its own weights: ``{name: (path, student, ema teacher or None)}``."""
    root = tmp_path_factory.mktemp('layouts')
    student, teacher, other = _weights(1), _weights(2), _weights(3)

    def prefixed(**models):
        return {f'{p}.{k}': v for p, sd in models.items() for k, v in sd.items()}

    kinds = {
        'plain': ({'state_dict': student}, None),
        'st': ({'state_dict': prefixed(model=student, ema_model=teacher),
                'meta': {'iter': 600}}, teacher),
        # ours: teachers.<i>.*, the original's: cu_model.* / ca_model.*
        'ckd': ({'state_dict': {**prefixed(stu_model=student),
                                **{f'teachers.{i}.{k}': v for i, sd in
                                   enumerate((teacher, other)) for k, v in sd.items()}}},
                None),
        'ckd_original': ({'state_dict': prefixed(stu_model=student, cu_model=teacher,
                                                 ca_model=other)}, None),
    }
    out = {}
    for name, (ckpt, ema) in kinds.items():
        path = str(root / f'{name}.pth')
        torch.save(ckpt, path)
        out[name] = (path, student, ema)
    return out


def _frames(n=5, h=64, w=96):
    rng = np.random.default_rng(0)
    return [cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (9, 9), 3)
            for _ in range(n)]


def test_publish_keeps_the_student_in_the_plain_layout_named_by_its_sha256(
        layouts, tiny_data, tmp_path, capsys):
    from mmseg_ddb.tools import infer, publish
    full, student, _ = layouts['ckd']
    out = str(tmp_path / 'pub')
    path = publish.main([DLV2, full, '--out', out])
    name = osp.basename(path)
    today = datetime.date.today().strftime('%Y%m%d')
    match = re.fullmatch(rf'source_only_synthetic_{today}-([0-9a-f]{{8}})\.pth', name)
    assert match, name
    assert hashlib.sha256(open(path, 'rb').read()).hexdigest()[:8] == match.group(1)
    assert sorted(os.listdir(out)) == sorted([name, name[:-4] + '.py'])
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    assert sorted(ckpt) == ['meta', 'state_dict']
    assert ckpt['meta']['layout'] == 'ckd' and ckpt['meta']['model'] == 'student'
    assert sorted(ckpt['state_dict']) == sorted(student)
    assert all(torch.equal(ckpt['state_dict'][k], v) for k, v in student.items())
    # student + two teachers -> one model: about a third of the file
    assert 2.5 < osp.getsize(full) / osp.getsize(path) < 3.2
    assert 'smaller' in capsys.readouterr().out

    # tools/infer.py: the same label maps from either file, with the dumped config
    images = osp.join(tiny_data, 'cs', 'leftImg8bit', 'val')
    preds = {}
    for which, (cfg, ckpt_path) in {'full': (DLV2, full),
                                    'pub': (path[:-4] + '.py', path)}.items():
        infer.main([cfg, ckpt_path, images, '--out', str(tmp_path / which),
                    '--save-label', '--device', 'cpu'])
        preds[which] = [cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in
                        sorted(glob.glob(str(tmp_path / which / '*_trainIds.png')))]
    assert len(preds['full']) == 4 and all(np.array_equal(a, b) for a, b in
                                 zip(preds['full'], preds['pub']))


@pytest.mark.parametrize('kind', ['st', 'ckd_original', 'plain'])
def test_publish_reads_every_layout_and_teacher_takes_the_ema(layouts, kind, tmp_path):
    from mmseg_ddb.apis.publish import deployable_checkpoint
    full, student, ema = layouts[kind]
    ckpt, _ = deployable_checkpoint(DLV2, full)
    assert all(torch.equal(ckpt['state_dict'][k], v) for k, v in student.items())
    if ema is not None:
        ckpt, _ = deployable_checkpoint(DLV2, full, teacher=True)
        assert ckpt['meta']['model'] == 'ema_teacher' and ckpt['meta']['iter'] == 600
        assert all(torch.equal(ckpt['state_dict'][k], v) for k, v in ema.items())


@pytest.mark.parametrize('case', ['unknown_layout', 'teacher_of_ckd'])
def test_publish_bad_input_is_one_line_and_writes_nothing(layouts, case, tmp_path, capsys):
    from mmseg_ddb.tools import publish
    if case == 'unknown_layout':
        path = str(tmp_path / 'odd.pth')
        torch.save({'state_dict': {'encoder.conv.weight': torch.zeros(1)}}, path)
        args, expected = [path], 'unknown checkpoint layout (top-level keys encoder.*)'
    else:
        args, expected = [layouts['ckd'][0], '--teacher'], 'but this is a ckd checkpoint'
    out = tmp_path / 'pub'
    with pytest.raises(SystemExit) as exc:
        publish.main([DLV2, *args, '--out', str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists() or not os.listdir(out)


@pytest.mark.parametrize('config, dynamic', [
    (DLV2, ['batch', 'height', 'width']),
    # MiT and ViT compute their token grids in Python: fixed size, dynamic batch
    (MIT, ['batch']),
    (VIT, ['batch']),
])
def test_export_matches_onnxruntime_with_the_dynamic_axes_it_allows(config, dynamic,
                                                                    tmp_path):
    import onnx
    import onnxruntime as ort

    from mmseg_ddb.apis.onnx_export import ExportedSegmentor, random_images
    torch.manual_seed(0)
    model = init_segmentor(config, None, 'cpu')
    path = str(tmp_path / 'm.onnx')
    info = export_onnx(model, path, 32, 64, log=lambda line: None)
    assert info['dynamic_axes'] == dynamic and info['opset'] == 17
    assert info['max_logit_diff'] < 1e-3
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta['dynamic_axes'] == ','.join(dynamic) and 'BGR' in meta['input']
    assert os.listdir(tmp_path) == ['m.onnx']
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    shape = (2, 64, 96) if 'height' in dynamic else (2, 32, 64)
    images = random_images(*shape, seed=5)
    with torch.no_grad():
        ref = ExportedSegmentor(model)(images).numpy()
    # the graph's preprocessing is the model's: BGR in, normalised RGB
    pre = model.data_preprocessor
    with torch.no_grad():
        manual = model.encode_decode(
            (images[:, [2, 1, 0]] - pre.mean) / pre.std,
            [dict(img_shape=shape[1:])] * 2).numpy()
    np.testing.assert_allclose(ref, manual, atol=1e-5)
    out = session.run(None, {'image': images.numpy()})[0]
    assert out.shape == (2, 19) + shape[1:]
    assert np.abs(out - ref).max() < 1e-3


def test_export_argmax_unsupported_operator_and_tolerance(tmp_path, monkeypatch):
    import onnxruntime as ort

    from mmseg_ddb.apis import onnx_export
    torch.manual_seed(0)
    model = init_segmentor(DLV2, None, 'cpu')
    path = str(tmp_path / 'label.onnx')
    export_onnx(model, path, 64, 64, argmax=True, log=lambda line: None)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    images = onnx_export.random_images(1, 64, 80)
    labels = session.run(None, {'image': images.numpy()})[0]
    with torch.no_grad():
        ref = onnx_export.ExportedSegmentor(model)(images).argmax(1).numpy()
    assert labels.dtype == np.int64 and labels.shape == (1, 64, 80)
    assert (labels == ref).mean() > 0.999
    from mmseg_ddb.apis.onnx_runtime import use_onnxruntime
    with pytest.raises(ConfigError, match='not logits'):  # tools/test.py needs logits
        use_onnxruntime(init_segmentor(DLV2, None, 'cpu'), path)

    # the weights change after the export: onnxruntime disagrees -> nothing written
    export = onnx_export._export

    def drifted(wrapper, *args):
        export(wrapper, *args)
        with torch.no_grad():
            wrapper.model.decode_head.conv_seg.bias += 1
    monkeypatch.setattr(onnx_export, '_export', drifted)
    with pytest.raises(ExportError, match='past the tolerance'):
        export_onnx(model, str(tmp_path / 'bad.onnx'), 64, 64, dynamic=False)
    monkeypatch.undo()

    head = type(model.decode_head)
    forward = head.forward
    monkeypatch.setattr(head, 'forward', lambda self, x: forward(self, x).nanmedian(
        1, keepdim=True)[0] + forward(self, x))
    with pytest.raises(ExportError, match="aten::nanmedian") as exc:
        export_onnx(model, str(tmp_path / 'op.onnx'), 64, 64)
    assert len(str(exc.value).splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ['label.onnx']


def test_published_file_and_its_onnx_export_evaluate_as_the_full_checkpoint(
        layouts, tiny_data, tmp_path, capsys):
    """tools/test.py: the published file gives exactly the full CKD checkpoint's
    predictions; its ONNX export, run by onnxruntime, the same mIoU (2 decimals)."""
    from mmseg_ddb.apis.publish import publish
    from mmseg_ddb.tools import export_onnx as export_tool
    from mmseg_ddb.tools import test
    full = layouts['ckd'][0]
    published, _ = publish(DLV2, full, str(tmp_path / 'pub'))
    onnx_path = str(tmp_path / 'm.onnx')
    export_tool.main([DLV2, published, '--out', onnx_path, '--shape', '128', '256'])
    printed = capsys.readouterr().out
    assert 'dynamic axes: batch, height, width' in printed
    assert re.search(r'max \|logit diff\| \S+, pixels with another label', printed)
    opts = cfg_option_args(tiny_options(tiny_data))
    records, preds = {}, {}
    for which, ckpt in (('full', full), ('pub', published), ('onnx', onnx_path)):
        records[which] = test.main([DLV2, ckpt, '--out', str(tmp_path / which),
                                    '--work-dir', str(tmp_path / f'w_{which}'),
                                    '--cfg-options', *opts])
        preds[which] = np.stack([cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in
                                 sorted(glob.glob(str(tmp_path / which / '*.png')))])
    assert preds['full'].shape[0] == 4
    np.testing.assert_array_equal(preds['full'], preds['pub'])
    assert records['full']['mIoU'] == records['pub']['mIoU']
    assert (preds['full'] == preds['onnx']).mean() > 0.999
    assert round(records['full']['mIoU'], 2) == round(records['onnx']['mIoU'], 2)


def test_video_overlay_keeps_the_frame_rate_and_labels_match_images(layouts, tmp_path):
    from mmseg_ddb.datasets.base import CITYSCAPES_METAINFO
    from mmseg_ddb.tools import infer
    from mmseg_ddb.utils.images import overlay
    src = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(src, cv2.VideoWriter_fourcc(*'MJPG'), 10, (96, 64))
    for frame in _frames(5):
        writer.write(frame)
    writer.release()
    capture = cv2.VideoCapture(src)
    decoded = [capture.read()[1] for _ in range(5)][::2]
    weights = layouts['plain'][0]
    out = str(tmp_path / 'out')
    infer.main([DLV2, weights, src, '--out', out, '--save-label', '--frame-stride', '2',
                '--device', 'cpu'])
    assert sorted(os.listdir(out)) == ['clip_overlay.mp4', 'clip_trainIds']
    video = cv2.VideoCapture(osp.join(out, 'clip_overlay.mp4'))
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)  # 10 fps, every 2nd frame
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (96, 64)
    overlays = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        overlays.append(frame)
    assert len(overlays) == 3
    assert sorted(os.listdir(osp.join(out, 'clip_trainIds'))) == [
        '000000.png', '000002.png', '000004.png']
    model = init_segmentor(DLV2, weights, 'cpu')
    expected = inference(model, decoded, batch_size=4)
    palette = CITYSCAPES_METAINFO['palette']
    for i, (frame, label) in enumerate(zip(decoded, expected)):
        got = cv2.imread(osp.join(out, 'clip_trainIds', f'{2 * i:06d}.png'),
                         cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(got, label)
        painted = overlay(frame, label, palette, 0.5).astype(float)
        # lossy codec: near the painted frame, far from the plain one
        err = np.abs(overlays[i] - painted).mean()
        assert err < 8 and err < 0.5 * np.abs(frame - painted).mean(), err


def test_unreadable_video_is_one_line_and_writes_nothing(tmp_path, capsys):
    from mmseg_ddb.tools import infer
    bad = tmp_path / 'broken.mp4'
    bad.write_bytes(b'\x00\x00\x00\x18ftypmp42 truncated')
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as exc:
        infer.main([DLV2, '', str(bad), '--out', str(out), '--device', 'cpu'])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('error: cannot read video') and str(bad) in err[-1], err
    assert not out.exists() or not os.listdir(out)
