"""The stage cache (mmseg_ddb/pipeline/cache.py): a shared stage trained in
one work dir is copied into the next instead of trained again, keyed by its
signature, its data and the platform. The training processes are replaced
by a stand-in that writes what train.py leaves (the runner's logic is what
is tested; the pipeline tests run real stages with the cache off)."""
import json
import os
import os.path as osp

import pytest
from test_pipeline_report import pipeline_dict

import mmseg_ddb  # noqa: F401
from mmseg_ddb.pipeline import PipelineRunner
from mmseg_ddb.pipeline import cache as stage_cache
from mmseg_ddb.pipeline.manifest import sha256_file

#: the pretraining config's data (relative to the folder the pipeline runs in)
GENERIC = osp.join('data', 'synthetic', 'generic', 'gta')


class FakeTraining:
    """Stands in for ``Launcher.stream``: each training command writes a
    checkpoint whose bytes name the run, the ``last_checkpoint`` marker
    and, when asked, the final metrics."""

    def __init__(self):
        self.runs = []

    def __call__(self, cmd, log_path, desc, env=None):
        work_dir = cmd[cmd.index('--work-dir') + 1]
        self.runs.append(desc)
        os.makedirs(work_dir, exist_ok=True)
        ckpt = osp.join(work_dir, 'iter_4.pth')
        with open(ckpt, 'wb') as f:
            f.write(f'weights of run {len(self.runs)}'.encode())
        with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
            f.write(ckpt)
        if '--final-metrics' in cmd:
            with open(cmd[cmd.index('--final-metrics') + 1], 'w') as f:
                json.dump(dict(checkpoint=ckpt, mIoU=1.0), f)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    cfg = tmp_path / 'pipeline.py'
    cfg.write_text(f'pipeline = {pipeline_dict()!r}\n')
    monkeypatch.chdir(tmp_path)  # the configs' relative data roots
    monkeypatch.setenv(stage_cache.CACHE_ENV, str(tmp_path / 'cache'))
    fake = FakeTraining()

    def run(name, stages=('init',)):
        runner = PipelineRunner(str(cfg), str(tmp_path / name), gpus=0)
        runner.launch.stream = fake
        before = len(fake.runs)
        runner.run(subset=stages)
        record = runner.manifest.stages[stages[-1]]
        return dict(trained=len(fake.runs) > before, record=record,
                    runs=fake.runs[before:])

    return dict(run=run, fake=fake, cache=tmp_path / 'cache', root=tmp_path)


def entries(folder):
    return sorted(os.listdir(folder)) if osp.isdir(folder) else []


def test_a_second_work_dir_takes_the_shared_stage_from_the_cache(setup,
                                                                 capsys):
    run = setup['run']
    first = run('a')
    assert first['trained'] and len(entries(setup['cache'])) == 1
    assert 'stored in the stage cache' in capsys.readouterr().out
    second = run('b')
    assert not second['trained']
    assert 'restored from the stage cache' in capsys.readouterr().out
    a, b = first['record'], second['record']
    assert b['status'] == 'done' and b['signature'] == a['signature']
    assert 'restored from the stage cache' in b['reason']
    ckpt = b['outputs']['checkpoint']
    assert ckpt['path'] == osp.join(setup['root'], 'b', 'init', 'iter_4.pth')
    assert ckpt['sha256'] == a['outputs']['checkpoint']['sha256'] == \
        sha256_file(ckpt['path'])
    with open(osp.join(setup['root'], 'b', 'init', 'last_checkpoint')) as f:
        assert f.read() == ckpt['path']
    # done is done: the next run skips it, as after a training
    assert not run('b')['trained']


def test_the_data_the_platform_and_a_damaged_entry_each_miss(setup,
                                                             monkeypatch):
    run, cache = setup['run'], setup['cache']
    assert run('a')['trained']  # the data does not exist yet: trains
    os.makedirs(GENERIC)
    with open(osp.join(GENERIC, '00000.png'), 'wb') as f:
        f.write(b'png')
    open(osp.join('data', 'synthetic', 'generic.lock'), 'w').close()
    assert run('b')['trained']  # now it does: another key
    assert len(entries(cache)) == 2
    assert not run('c')['trained']
    with open(osp.join(GENERIC, '00000.png'), 'wb') as f:
        f.write(b'png, regenerated')
    assert run('d')['trained']  # another size
    real = stage_cache.platform_key()
    monkeypatch.setattr(stage_cache, 'platform_key',
                        lambda: dict(real, cpu='ANOTHER'))
    assert run('e')['trained']  # another CPU's float kernels
    monkeypatch.setattr(stage_cache, 'platform_key', lambda: real)
    assert not run('f')['trained']
    for entry in entries(cache):  # damage every entry's checkpoint
        with open(cache / entry / 'iter_4.pth', 'ab') as f:
            f.write(b'!')
    assert run('g')['trained']  # ignored, trained and not overwritten
    monkeypatch.setenv(stage_cache.CACHE_ENV, '0')
    count = len(entries(cache))
    assert run('h')['trained'] and len(entries(cache)) == count


def test_only_shared_stages_are_cached(setup):
    run = setup['run']
    assert run('a', ['init', 'reference'])['runs'] == ['init', 'reference']
    assert len(entries(setup['cache'])) == 1  # the init only
    assert run('b', ['init', 'reference'])['runs'] == ['reference']
    assert len(entries(setup['cache'])) == 1


def test_the_key_hashes_the_files_under_every_data_root(tmp_path):
    cfg = dict(train_dataloader=dict(dataset=dict(data_root=str(
        tmp_path / 'src'))), val=[dict(data_root=str(tmp_path / 'tgt')),
                                  dict(data_root=str(tmp_path / 'src'))])
    assert stage_cache.data_roots(cfg) == [str(tmp_path / 'src'),
                                           str(tmp_path / 'tgt')]
    roots = stage_cache.data_roots(cfg)
    missing = stage_cache.data_fingerprint(roots)
    os.makedirs(tmp_path / 'src' / 'a')
    empty = stage_cache.data_fingerprint(roots)
    assert empty != missing
    (tmp_path / 'src' / 'a' / 'x.png').write_bytes(b'1')
    one = stage_cache.data_fingerprint(roots)
    assert one != empty
    # temporary files and locks are not data
    (tmp_path / 'src' / 'a' / '.tmp-1-y.png').write_bytes(b'1')
    (tmp_path / 'src' / 'a' / 'gen.lock').write_bytes(b'')
    assert stage_cache.data_fingerprint(roots) == one
    os.utime(tmp_path / 'src' / 'a' / 'x.png', ns=(1, 1))
    assert stage_cache.data_fingerprint(roots) != one
    assert stage_cache.cache_key('sig', cfg) != stage_cache.cache_key(
        'other', cfg)


def test_off_and_default_folders(monkeypatch, tmp_path):
    monkeypatch.setenv(stage_cache.CACHE_ENV, '0')
    assert stage_cache.cache_root() is None
    assert stage_cache.store('k', {}, 1.0, 'init') is None
    monkeypatch.delenv(stage_cache.CACHE_ENV)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    assert stage_cache.cache_root() == str(tmp_path / 'mmseg_ddb' /
                                           'stages')
