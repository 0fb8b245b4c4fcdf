"""``tools/ddb_pipeline.py`` end to end, on a tiny one-round pipeline.

The pipeline runs as a user runs it (a subprocess of the real script with
``sys.executable``) on leaf configs that inherit the repository's synthetic
configs and shrink them: 8 source / 8 target-train / 4 target-val generated
images of 64x128, 64x64 crops, batch 2, no data workers, 2-4 iterations.

What the module checks (the issue's acceptance criteria):

* ``--dry-run`` prints every stage with its wiring and planned outputs and
  runs nothing;
* a pipeline killed (SIGKILL) during a training stage and during a prototype
  stage takes its stage processes down with it, and rerunning it resumes the
  interrupted training stage (mmengine resumes from its mid-stage
  checkpoint), recomputes the interrupted prototype stage, does not rerun
  finished stages, and leaves a complete manifest and no truncated file;
  what a kill in the middle of a write leaves (partial ``.tmp-*`` files, an
  empty ``last_checkpoint``) is planted on purpose and must be cleaned up /
  repaired by the rerun;
* rerunning a finished pipeline skips every stage;
* a stage whose config changed is redone, the manifest says why, and its
  previous outputs are kept aside;
* ``--from`` / ``--only`` force the documented stages;
* the tiny pipeline's ``oracle`` stage (trained on the target labels, from
  the init checkpoint) is reported in ``summary.json`` with its per-class
  IoU; the summary's pure functions are tested in test_pipeline_report.py.
"""
import glob
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

import pytest
from conftest import REPO  # noqa: E402

PIPELINE = osp.join(REPO, 'tools', 'ddb_pipeline.py')
SYNTHETIC = osp.join(REPO, 'configs', 'synthetic')
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
#: the stages of the module's tiny pipeline (``tiny_pipeline``)
STAGES = ['init', 'oracle', 'r1_st_cu', 'r1_st_ca', 'r1_proto_cu',
          'r1_proto_ca', 'r1_ckd']
TRAIN_STAGES = ['init', 'oracle', 'r1_st_cu', 'r1_st_ca', 'r1_ckd']
#: the stages of a tiny pipeline written with ``oracle=False``
STAGES_NO_ORACLE = [s for s in STAGES if s != 'oracle']
#: the generated data (the datasets' ``synthetic=`` generator arguments)
DATA_ARGS = dict(seed=0, num_source=8, num_target_train=8, num_target_val=4,
                 height=64, width=128)
CROP = (64, 64)
#: wall-clock limit of one pipeline command / one wait, so a hang fails
TIMEOUT = 400


def data_args():
    """``DATA_ARGS``, with no held-out source-look and no generic-look
    images where the generator makes them (the tiny pipeline uses neither)
    and things and target look at their plain scale (the leaves'
    ``synthetic`` dict overrides the base config's arguments)."""
    import inspect

    from mmseg_ddb.datasets.synthetic import generate_synthetic
    args = dict(DATA_ARGS)
    params = inspect.signature(generate_synthetic).parameters
    for name in ('num_source_val', 'num_generic'):
        if name in params:
            args[name] = 0
    for name in ('thing_scale', 'shift'):  # the first demo's look
        if name in params:
            args[name] = 100
    return args


# -- the tiny pipeline --------------------------------------------------------
def _small_pipeline(pipeline):
    """A data pipeline with its random crops shrunk to ``CROP``."""
    out = []
    for step in pipeline:
        step = dict(step)
        if step.get('type') == 'RandomCrop':
            step['crop_size'] = CROP
        out.append(step)
    return out


def write_leaf(folder, name, base, data_root, max_iters, extra=''):
    """``folder/name.py``: the repository config ``base`` (inherited by
    absolute path) on the tiny generated data, with a short schedule and a
    checkpoint every 2 iterations. Two are kept: with one, mmengine deletes
    the previous checkpoint before it writes the next, and a kill in between
    would leave nothing to resume from (the test's kill must not land
    there by chance; what the pipeline does then is checked on purpose)."""
    from mmengine.config import Config
    base_path = osp.join(SYNTHETIC, base)
    train = Config.fromfile(base_path).train_dataloader.dataset.to_dict()
    synthetic = dict(root=data_root, **data_args())
    gta = dict(data_root=osp.join(data_root, 'gta'), synthetic=synthetic)
    cs = dict(data_root=osp.join(data_root, 'cityscapes'),
              synthetic=synthetic)
    if train['type'] == 'UDADataset':
        train_set = dict(
            source=dict(gta, pipeline=_small_pipeline(
                train['source']['pipeline'])),
            target=dict(cs, pipeline=_small_pipeline(
                train['target']['pipeline'])))
    elif train['type'] == 'DDBCityscapesDataset':
        # the oracle: the target-look training images with their labels
        assert 'seg_map_path' in train['data_prefix'], train
        train_set = dict(cs, data_prefix=train['data_prefix'],
                         pipeline=_small_pipeline(train['pipeline']))
    else:
        train_set = dict(gta, pipeline=_small_pipeline(train['pipeline']))
    loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
    text = f"""\
_base_ = [{base_path!r}]
synthetic = {synthetic!r}
train_dataloader = dict(**{loader!r}, dataset={train_set!r})
val_dataloader = dict(**{loader!r}, dataset={cs!r})
test_dataloader = val_dataloader
model = dict(data_preprocessor=dict(size={CROP!r}))
param_scheduler = [dict(type='PolyLR', power=1.0, eta_min=0.0,
                        by_epoch=False, begin=0, end={max_iters})]
train_cfg = dict(max_iters={max_iters}, val_interval={max_iters})
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=2, max_keep_ckpts=2))
{extra}"""
    path = osp.join(folder, f'{name}.py')
    with open(path, 'w') as f:
        f.write(text)
    return path


def assert_tiny(config, data_root):
    """Every dataset of the merged config reads the tiny data, every loader
    runs without workers."""
    from mmengine.config import Config
    cfg = Config.fromfile(config).to_dict()
    datasets = []

    def visit(node):
        if isinstance(node, dict):
            if 'data_root' in node or 'synthetic' in node:
                datasets.append(node)
            for value in node.values():
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader]['num_workers'] == 0, (config, loader)
        assert cfg[loader]['persistent_workers'] is False, (config, loader)
        visit(cfg[loader])
    assert len(datasets) >= 3, (config, datasets)
    for ds in datasets:
        assert ds['data_root'].startswith(data_root + os.sep), (config, ds)
        assert ds['synthetic']['root'] == data_root, (config, ds)


def write_tiny_pipeline(folder, evaluate=True, oracle=False):
    """A one-round pipeline config in ``folder``: a source-only ``init``
    stage (its checkpoint initialises every later model through
    ``model.backbone.init_cfg.checkpoint``, as in the synthetic demo), with
    ``oracle`` an oracle stage (the
    target labels, 2 iterations), ST-cu / ST-ca (4 iterations, so a
    checkpoint at 2 exists mid-stage), their prototypes and CKD."""
    from mmseg_ddb.datasets.synthetic import ensure_synthetic
    data_root = osp.join(folder, 'synthetic')
    ensure_synthetic(data_root, progress=False, **data_args())
    init = write_leaf(folder, 'tiny_init', 'source_only_synthetic.py',
                      data_root, 2)
    cu = write_leaf(folder, 'tiny_st_cu', 'st_cu_synthetic.py', data_root, 4)
    ca = write_leaf(folder, 'tiny_st_ca', 'st_ca_synthetic.py', data_root, 4)
    ckd = write_leaf(folder, 'tiny_ckd', 'ckd_synthetic.py', data_root, 2,
                     extra='uda = dict(proto_temperature=1.0)\n')
    leaves = dict(init=init, cu=cu, ca=ca, ckd=ckd)
    if oracle:
        leaves['oracle'] = write_leaf(
            folder, 'tiny_oracle', 'oracle_synthetic.py', data_root, 2)
    for leaf in leaves.values():
        assert_tiny(leaf, data_root)
    oracle_line = (f"oracle=dict(config={leaves['oracle']!r}),\n    "
                   if oracle else '')
    cfg = osp.join(folder, 'tiny_pipeline.py')
    with open(cfg, 'w') as f:
        f.write(f"""\
pipeline = dict(
    task='tiny',
    init=dict(config={init!r}, key='model.backbone.init_cfg.checkpoint'),
    {oracle_line}rounds=[dict(st=dict(cu={cu!r}, ca={ca!r}), ckd={ckd!r})],
    prototype_epochs=1,
    evaluate={evaluate!r})
""")
    return dict(pipeline=cfg, root=folder, **leaves)


@pytest.fixture(scope='module')
def tiny_pipeline(tmp_path_factory):
    import mmseg_ddb  # noqa: F401
    return write_tiny_pipeline(str(tmp_path_factory.mktemp('pipeline')),
                               oracle=True)


# -- helpers ------------------------------------------------------------------
def pipeline_cmd(cfg, work_dir, *args):
    return [sys.executable, PIPELINE, cfg, '--work-dir', work_dir, *args]


def run_pipeline(cfg, work_dir, *args, cwd):
    res = subprocess.run(pipeline_cmd(cfg, work_dir, *args), cwd=cwd,
                         env=ENV, capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 0, (
        f'exit {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}')
    return res


def read_manifest(work_dir):
    """The manifest, or None before it exists. It is written atomically, so
    it must always parse."""
    try:
        with open(osp.join(work_dir, 'manifest.json')) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def status(manifest, stage):
    return ((manifest or {}).get('stages', {}).get(stage) or {}).get(
        'status', 'pending')


def tail(path, n=3000):
    with open(path, errors='replace') as f:
        return f.read()[-n:]


def _open_files(pid):
    """The paths ``pid`` has open (``/proc/<pid>/fd``)."""
    try:
        fds = os.listdir(f'/proc/{pid}/fd')
    except OSError:
        return []
    paths = []
    for fd in fds:
        try:
            paths.append(os.readlink(f'/proc/{pid}/fd/{fd}'))
        except OSError:
            pass
    return paths


def processes_of(marker):
    """``[(pid, cmdline)]`` of live processes whose command line names
    ``marker`` or that have a file under it open (a stage forked by the
    warm-start zygote has the zygote's command line, but opens its log in
    the work dir at once; zombies have an empty command line)."""
    found = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        if cmd and (marker in cmd or any(
                path.startswith(marker) for path in _open_files(pid))):
            found.append((int(pid), cmd))
    return found


def _parents():
    """``{pid: parent pid}`` of every live (not zombie) process."""
    parent = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(')') + 2:].split()
        if fields[0] != 'Z':  # zombies are dead already
            parent[int(name)] = int(fields[1])
    return parent


def descendants(pid):
    """The pids of the live processes below ``pid`` (children, their
    children, ...)."""
    parent = _parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found


def files_under(folder):
    for dirpath, _, names in os.walk(folder):
        for name in names:
            yield osp.join(dirpath, name)


def tree_state(folder):
    """``{path: (size, mtime_ns)}`` of every file under ``folder``."""
    state = {}
    for path in files_under(folder):
        try:
            st = os.stat(path)
        except FileNotFoundError:  # removed while we looked
            continue
        state[path] = (st.st_size, st.st_mtime_ns)
    return state


def kill_pipeline_when(cfg, work_dir, cwd, log_path, stage, condition,
                       what):
    """Start the pipeline; poll its manifest and SIGKILL the pipeline once
    ``stage`` is ``running``, its process is up and ``condition(manifest)``
    holds. Returns the manifest then, the stage processes that were running
    and the work dir's files right after the kill."""
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(pipeline_cmd(cfg, work_dir), cwd=cwd,
                                env=ENV, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            manifest = read_manifest(work_dir)
            if status(manifest, stage) == 'running' and condition(manifest):
                children = processes_of(osp.join(work_dir, stage))
                if children:
                    # the stage, its zygote (warm starts) and their children
                    children += [(p, 'below the pipeline') for p in
                                 descendants(proc.pid)]
                    proc.kill()
                    proc.wait(timeout=60)
                    return manifest, children, tree_state(work_dir)
            assert status(manifest, stage) != 'done', \
                f'{stage} finished before it could be interrupted'
            code = proc.poll()
            assert code is None, (f'pipeline exited ({code}) before {what}:'
                                  f'\n{tail(log_path)}')
            assert time.monotonic() < deadline, (
                f'timed out waiting for {what}:\n{tail(log_path)}')
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)


def assert_died_with_pipeline(work_dir, children, state, grace=10):
    """The stage processes die with the killed pipeline (PR_SET_PDEATHSIG):
    none of them (nor any other process of the work dir) is left, and none
    went on writing after the kill (an orphan finishing its stage would
    also be gone after a while, but would have written files)."""
    deadline = time.monotonic() + grace
    below = {pid for pid, _ in children}

    def alive():
        return processes_of(work_dir) + [(p, 'below the pipeline') for p in
                                         below & set(_parents())]
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = alive()
    for pid, _ in left:  # do not leave them running when the test fails
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    assert not left, (f'stage processes outlived the pipeline: {left} '
                      f'(running at the kill: {children})')
    time.sleep(0.5)
    after = tree_state(work_dir)
    changed = sorted(p for p in set(state) | set(after)
                     if state.get(p) != after.get(p))
    assert changed == [], ('files written after the pipeline was killed, '
                           f'by {children}: {changed}')


def output_ids(record):
    """``{key: (path, sha256, inode, mtime_ns)}`` of a stage's outputs."""
    out = {}
    for key, value in (record.get('outputs') or {}).items():
        st = os.stat(value['path'])
        out[key] = (value['path'], value['sha256'], st.st_ino,
                    st.st_mtime_ns)
    return out


def assert_complete(work_dir, evaluate=True):
    """Every stage done with intact outputs, the wiring consistent, every
    file complete, no temporary file left."""
    import torch

    import mmseg_ddb  # noqa: F401  (allow-lists mmengine's checkpoint types)
    from mmseg_ddb.pipeline import sha256_file
    manifest = read_manifest(work_dir)
    assert manifest['pipeline']['stages'] == STAGES
    stages = manifest['stages']
    for name in STAGES:
        rec = stages[name]
        assert rec['status'] == 'done', (name, rec)
        assert rec['outputs'], name
        for key, out in rec['outputs'].items():
            assert osp.isfile(out['path']), (name, key, out)
            assert osp.dirname(out['path']) == osp.join(work_dir, name), \
                (name, out['path'])
            assert sha256_file(out['path']) == out['sha256'], (name, key)
        for key, inp in rec.get('inputs', {}).items():
            src = {'init': 'init', 'teacher_cu': 'r1_st_cu',
                   'teacher_ca': 'r1_st_ca', 'prototypes_cu': 'r1_proto_cu',
                   'prototypes_ca': 'r1_proto_ca',
                   'checkpoint': name.replace('proto', 'st')}[key]
            src_out = stages[src]['outputs'][
                'prototypes' if key.startswith('prototypes') else
                'checkpoint']
            assert inp == src_out, (name, key, inp, src_out)
    init = stages['init']['outputs']['checkpoint']['path']
    ckd = stages['r1_ckd']
    assert ckd['options'] == {
        'model.backbone.init_cfg.checkpoint': init,
        'uda.teachers.0.checkpoint':
            stages['r1_st_cu']['outputs']['checkpoint']['path'],
        'uda.teachers.0.prototypes':
            stages['r1_proto_cu']['outputs']['prototypes']['path'],
        'uda.teachers.1.checkpoint':
            stages['r1_st_ca']['outputs']['checkpoint']['path'],
        'uda.teachers.1.prototypes':
            stages['r1_proto_ca']['outputs']['prototypes']['path'],
    }
    for name in ('oracle', 'r1_st_cu', 'r1_st_ca'):
        assert stages[name]['options'] == {'model.backbone.init_cfg.checkpoint': init}
    # no truncated or temporary file anywhere in the work dir
    files = list(files_under(work_dir))
    assert [f for f in files if '.tmp-' in osp.basename(f)] == []
    for path in files:
        if path.endswith('.pth'):
            obj = torch.load(path, map_location='cpu', weights_only=True)
            assert isinstance(obj, dict) and obj, path
        elif path.endswith('.json'):
            with open(path) as f:
                if osp.basename(osp.dirname(path)) == 'vis_data':
                    for line in f:  # mmengine's scalars: JSON lines
                        json.loads(line)
                else:
                    json.load(f)
    with open(osp.join(work_dir, 'summary.json')) as f:
        summary = json.load(f)
    assert [r['stage'] for r in summary['stages']] == TRAIN_STAGES
    assert all(r['status'] == 'done' for r in summary['stages'])
    if evaluate:
        for row in summary['stages']:
            assert isinstance(row['mIoU'], float), row
            assert 0.0 <= row['mIoU'] <= 100.0, row
            with open(osp.join(work_dir, row['stage'], 'metrics.json')) as f:
                metrics = json.load(f)
            assert metrics['mIoU'] == row['mIoU']
            # the per-class IoU of the stage's test, as tools/test.py wrote it
            assert row['per_class'] == metrics['per_class'], row
            assert row['per_class'] and all(
                v is None or 0.0 <= v <= 100.0
                for v in row['per_class'].values()), row
        # the oracle is reported; without a reference stage there is no
        # reference -> oracle gap to measure the stages by
        oracle = summary['stages'][TRAIN_STAGES.index('oracle')]
        assert oracle['label'] == 'oracle (target labels)'
        assert summary['oracle_mIoU'] == oracle['mIoU']
        assert summary['reference_mIoU'] is None
        assert [r['gap_closed'] for r in summary['stages']] == [None] * len(
            TRAIN_STAGES)
        with open(osp.join(work_dir, 'summary.png'), 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'

    return manifest


def skipped_stages(stdout):
    return re.findall(r'^\[(\w+)\] up to date, skipped$', stdout, re.M)


def stage_lines(stdout):
    """The stages the pipeline announced (skipped or run), in order."""
    return list(dict.fromkeys(re.findall(r'^\[(\w+)\] ', stdout, re.M)))


# -- tests --------------------------------------------------------------------
def test_dry_run_prints_the_plan_and_runs_nothing(tiny_pipeline, tmp_path):
    work_dir = str(tmp_path / 'work')
    res = run_pipeline(tiny_pipeline['pipeline'], work_dir, '--dry-run',
                       cwd=str(tmp_path))
    out = res.stdout
    lines = out.splitlines()
    # every stage, in order, with its kind, status and config
    heads = [ln.split() for ln in lines if ln and not ln.startswith(' ')][1:]
    assert [h[0] for h in heads] == STAGES, out
    assert [h[1] for h in heads] == ['train'] * 4 + ['prototypes'] * 2 + [
        'train'], out
    assert all(h[2] == 'pending' for h in heads), out
    configs = dict(init='init', oracle='oracle', r1_st_cu='cu', r1_st_ca='ca',
                   r1_proto_cu='cu', r1_proto_ca='ca', r1_ckd='ckd')
    assert [h[3] for h in heads] == [tiny_pipeline[configs[s]]
                                     for s in STAGES], out

    def block(stage):
        i = next(i for i, ln in enumerate(lines) if ln.startswith(stage))
        j = i + 1
        while j < len(lines) and lines[j].startswith(' '):
            j += 1
        return [ln.strip() for ln in lines[i + 1:j]]

    wd = osp.abspath(work_dir)
    assert block('init') == [f'-> checkpoint: {wd}/init/iter_<last>.pth']
    assert block('oracle') == [
        'model.backbone.init_cfg.checkpoint = <init.checkpoint>',
        f'-> checkpoint: {wd}/oracle/iter_<last>.pth']
    for path in ('cu', 'ca'):
        assert block(f'r1_st_{path}') == [
            'model.backbone.init_cfg.checkpoint = <init.checkpoint>',
            f'-> checkpoint: {wd}/r1_st_{path}/iter_<last>.pth']
        assert block(f'r1_proto_{path}') == [
            f'-> prototypes: {wd}/r1_proto_{path}/prototypes.pth']
    assert block('r1_ckd') == [
        'model.backbone.init_cfg.checkpoint = <init.checkpoint>',
        'uda.teachers.0.checkpoint = <r1_st_cu.checkpoint>',
        'uda.teachers.0.prototypes = <r1_proto_cu.prototypes>',
        'uda.teachers.1.checkpoint = <r1_st_ca.checkpoint>',
        'uda.teachers.1.prototypes = <r1_proto_ca.prototypes>',
        f'-> checkpoint: {wd}/r1_ckd/iter_<last>.pth']
    # nothing ran: no stage announced, no file written
    assert stage_lines(out) == []
    assert not osp.exists(work_dir) or list(files_under(work_dir)) == []
    assert glob.glob(str(tmp_path / '**' / '*.pth'), recursive=True) == []
    assert not osp.exists(tmp_path / 'work_dirs')


@pytest.fixture(scope='module')
def killed_twice(tiny_pipeline):
    """The tiny pipeline killed during ``r1_st_ca`` (after its mid-stage
    checkpoint), rerun and killed during ``r1_proto_cu``, then rerun to the
    end. Returns what each step saw."""
    root = tiny_pipeline['root']
    cfg = tiny_pipeline['pipeline']
    work_dir = osp.join(root, 'work')
    seen = dict(work_dir=work_dir)

    # run 1: kill during the training stage r1_st_ca, once it holds a
    # complete mid-stage checkpoint
    marker = osp.join(work_dir, 'r1_st_ca', 'last_checkpoint')
    seen['kill1'], children, state = kill_pipeline_when(
        cfg, work_dir, root, osp.join(root, 'run1.log'), 'r1_st_ca',
        lambda m: osp.isfile(marker), 'r1_st_ca to save a checkpoint')
    with open(marker) as f:
        seen['kill1_checkpoint'] = f.read().strip()
    seen['kill1_outputs'] = {s: output_ids(seen['kill1']['stages'][s])
                             for s in ('init', 'oracle', 'r1_st_cu')}
    assert_died_with_pipeline(work_dir, children, state)
    seen['kill1_after'] = read_manifest(work_dir)
    # what a kill in the middle of a write leaves behind: a partial
    # temporary file next to the checkpoints and next to the manifest, and
    # an empty last_checkpoint (mmengine writes it in place)
    with open(seen['kill1_checkpoint'], 'rb') as f:
        head = f.read(4096)
    open(marker, 'w').close()
    seen['planted'] = [
        osp.join(work_dir, 'r1_st_ca', '.tmp-999999-iter_4.pth'),
        osp.join(work_dir, '.tmp-999999.json')]
    for stale in seen['planted']:
        with open(stale, 'wb') as f:
            f.write(head if stale.endswith('.pth') else b'{"stages": {')

    # run 2: resumes r1_st_ca; kill during the prototype stage r1_proto_cu
    seen['kill2'], children, state = kill_pipeline_when(
        cfg, work_dir, root, osp.join(root, 'run2.log'), 'r1_proto_cu',
        lambda m: True, 'r1_proto_cu to start')
    seen['kill2_outputs'] = {s: output_ids(seen['kill2']['stages'][s])
                             for s in ('init', 'oracle', 'r1_st_cu',
                                       'r1_st_ca')}
    assert_died_with_pipeline(work_dir, children, state)
    seen['kill2_after'] = read_manifest(work_dir)
    seen['planted_left'] = [p for p in seen['planted'] if osp.exists(p)]

    # run 3: to the end
    seen['run3'] = run_pipeline(cfg, work_dir, cwd=root)
    seen['final'] = read_manifest(work_dir)
    return seen


def test_killed_pipeline_resumes_without_rerunning_finished_stages(
        killed_twice):
    seen = killed_twice
    work_dir = seen['work_dir']
    # the kills left the interrupted stage `running`, the others untouched
    first, second = seen['kill1_after'], seen['kill2_after']
    assert [status(first, s) for s in STAGES] == [
        'done', 'done', 'done', 'running', 'pending', 'pending', 'pending']
    assert [status(second, s) for s in STAGES] == [
        'done', 'done', 'done', 'done', 'running', 'pending', 'pending']

    # the partial files of writers killed mid-write were cleaned up
    assert seen['planted_left'] == []
    final = assert_complete(work_dir)
    stages = final['stages']
    # stages finished before a kill were not rerun
    for name in ('init', 'oracle', 'r1_st_cu'):
        assert stages[name]['started'] == first['stages'][name]['started']
        assert stages[name]['reason'] == 'not run yet'
        assert output_ids(stages[name]) == seen['kill1_outputs'][name]
    assert stages['r1_st_ca']['started'] == second['stages']['r1_st_ca'][
        'started']
    for name in ('init', 'oracle', 'r1_st_cu', 'r1_st_ca'):
        assert output_ids(stages[name]) == seen['kill2_outputs'][name]
    assert glob.glob(osp.join(work_dir, '*.old-*')) == glob.glob(
        osp.join(work_dir, 'r1_proto_cu.old-*'))
    assert skipped_stages(seen['run3'].stdout) == [
        'init', 'oracle', 'r1_st_cu', 'r1_st_ca']

    # r1_st_ca resumed from its mid-stage checkpoint
    assert re.fullmatch(r'interrupted \(running\); resuming',
                        stages['r1_st_ca']['reason'])
    with open(osp.join(work_dir, 'r1_st_ca', 'stage.log')) as f:
        log = f.read()
    commands = re.findall(r'^\$ .*-m mmseg_ddb\.tools\.train.*$', log, re.M)
    assert len(commands) == 2, commands
    assert '--resume' not in commands[0] and '--resume' in commands[1]
    assert 'Auto resumed from the latest checkpoint' in log
    resumed = [int(i) for i in re.findall(r'resumed epoch: \d+, iter: (\d+)',
                                          log)]
    killed_at = int(re.search(r'iter_(\d+)\.pth',
                              seen['kill1_checkpoint']).group(1))
    assert len(resumed) == 1 and resumed[0] >= killed_at >= 2, resumed
    # ... and the prototype stage was recomputed
    assert stages['r1_proto_cu']['reason'] == \
        'interrupted (running); recomputing'
    for name in ('r1_proto_ca', 'r1_ckd'):
        assert stages[name]['reason'] == 'not run yet'


def test_stage_scores_come_from_the_final_validation_and_equal_test_py(
        killed_twice, tmp_path):
    """The pipeline scores a stage with the validation after its last
    iteration (``train.py --final-metrics``) instead of a second process;
    the record equals what ``tools/test.py`` gives the checkpoint, to the
    last digit, for a plain model, an ST student resumed mid-stage and a CKD
    student."""
    from mmseg_ddb.tools import test
    work_dir = killed_twice['work_dir']
    stages = killed_twice['final']['stages']
    for name in ('oracle', 'r1_st_ca', 'r1_ckd'):
        rec = stages[name]
        with open(rec['outputs']['metrics']['path']) as f:
            final = json.load(f)
        ckpt = rec['outputs']['checkpoint']['path']
        assert final['source'] == 'final validation', final
        assert final['checkpoint'] == ckpt
        log = open(osp.join(work_dir, name, 'stage.log')).read()
        assert 'mmseg_ddb.tools.test' not in log  # no second process
        record = test.main([rec['config'], ckpt, '--work-dir',
                            str(tmp_path / name)])
        for key in ('mIoU', 'mAcc', 'aAcc', 'per_class'):
            assert final[key] == record[key], (name, key)


def test_rerun_of_a_finished_pipeline_skips_every_stage(tiny_pipeline,
                                                         killed_twice):
    work_dir = killed_twice['work_dir']
    before = read_manifest(work_dir)
    start = time.monotonic()
    res = run_pipeline(tiny_pipeline['pipeline'], work_dir,
                       cwd=tiny_pipeline['root'])
    seconds = time.monotonic() - start
    assert skipped_stages(res.stdout) == STAGES, res.stdout
    assert stage_lines(res.stdout) == STAGES, res.stdout
    assert read_manifest(work_dir)['stages'] == before['stages']
    assert seconds < 120, seconds  # no stage ran (each one takes seconds)


def test_monitored_stages_report_their_pseudo_labels(killed_twice):
    """The synthetic ST and CKD configs monitor their pseudo-labels: the
    stage's report reaches the manifest and the summary."""
    stages = killed_twice['final']['stages']
    st = stages['r1_st_cu']['pseudo_labels']
    assert st['trained_on'] == 'teacher' and st['threshold'] == 0.968
    assert set(st['sources']) == {'teacher', 'teacher_confident'}
    # 4 iterations x 2 target crops of 64x64 (a few pixels are unlabelled);
    # r1_st_ca was killed after its checkpoint at 2 and resumed: its sums
    # count the iterations before the kill too
    for name in ('r1_st_cu', 'r1_st_ca'):
        pixels = stages[name]['pseudo_labels']['sources']['teacher'][
            'pixels']
        assert 0.9 * 4 * 2 * 64 * 64 < pixels <= 4 * 2 * 64 * 64, name
    assert 0 <= st['confident_share'] <= 1
    ckd = stages['r1_ckd']['pseudo_labels']
    assert ckd['trained_on'] == 'rectified'
    assert set(ckd['sources']) == {'cu', 'ca', 'plain', 'rectified'}
    assert stages['oracle']['pseudo_labels'] is None
    with open(osp.join(killed_twice['work_dir'], 'summary.json')) as f:
        rows = {r['stage']: r for r in json.load(f)['stages']}
    assert rows['r1_ckd']['pseudo_labels'] == ckd
    with open(osp.join(killed_twice['work_dir'], 'r1_st_cu',
                       'stage.log')) as f:
        assert 'pl_teacher_confident_miou' in f.read()  # the log's scalars


def test_ablation_reruns_only_the_stages_the_switch_touches(tiny_pipeline,
                                                           killed_twice):
    """``--ablate uda.renormalize=True``: only r1_ckd (the one stage whose
    config has the key) runs again, into WORK_DIR/ablations/<switch>, the
    finished stages are reused, the summary gives its mIoU and the
    difference from the default run; a rerun skips everything."""
    work_dir = killed_twice['work_dir']
    cfg, cwd = tiny_pipeline['pipeline'], tiny_pipeline['root']
    base = read_manifest(work_dir)['stages']
    res = run_pipeline(cfg, work_dir, '--ablate', 'uda.renormalize=True',
                       cwd=cwd)
    assert skipped_stages(res.stdout) == STAGES[:-1], res.stdout
    out = osp.join(work_dir, 'ablations', 'uda.renormalize=True')
    stages = read_manifest(out)['stages']
    for name in STAGES[:-1]:  # reused: the finished run's files
        assert stages[name] == base[name], name
    ckd = stages['r1_ckd']
    assert ckd['status'] == 'done' and ckd['options']['uda.renormalize']         is True
    assert ckd['outputs']['checkpoint']['path'].startswith(out + os.sep)
    assert ckd['signature'] != base['r1_ckd']['signature']
    with open(osp.join(out, 'r1_ckd', 'stage.log')) as f:
        assert 'uda.renormalize=True' in f.read()
    with open(osp.join(work_dir, 'ablations', 'summary.json')) as f:
        summary = json.load(f)
    (ablation,) = summary['ablations']
    assert ablation['options'] == {'uda.renormalize': True}
    (row,) = ablation['stages']
    ablated, default = ckd['metrics']['mIoU'], base['r1_ckd']['metrics'][
        'mIoU']
    assert row['stage'] == 'r1_ckd' and summary['seeds'] == [None]
    assert row['mIoU_per_seed'] == [ablated]
    assert row['default_per_seed'] == [default]
    assert row['diff_per_seed'] == [pytest.approx(ablated - default)]
    assert row['mIoU_std'] == 0.0
    assert row['pl_mIoU_mean'] == ckd['pseudo_labels']['sources'][
        'rectified']['mIoU']
    with open(osp.join(work_dir, 'ablations', 'summary.md')) as f:
        assert '| uda.renormalize=True | R1 CKD |' in f.read()
    again = run_pipeline(cfg, work_dir, '--ablate', 'uda.renormalize=True',
                         cwd=cwd)
    assert skipped_stages(again.stdout) == STAGES, again.stdout
    assert read_manifest(out)['stages'] == stages


def test_ablation_without_downstream_reruns_the_switched_stage_only(
        tiny_pipeline, killed_twice):
    """``--ablate uda.teacher_bn=eval --ablate-stages r1_st_cu
    --no-downstream``: r1_st_cu runs again with the switch; r1_proto_cu and
    r1_ckd, which read it, neither run nor appear in the ablation's
    manifest or summary; the other stages are the finished run's."""
    work_dir = killed_twice['work_dir']
    cfg, cwd = tiny_pipeline['pipeline'], tiny_pipeline['root']
    base = read_manifest(work_dir)['stages']
    args = ('--ablate', 'uda.teacher_bn=eval', '--ablate-stages', 'r1_st_cu',
            '--no-downstream')
    res = run_pipeline(cfg, work_dir, *args, cwd=cwd)
    assert stage_lines(res.stdout) == ['r1_st_cu'], res.stdout
    out = osp.join(work_dir, 'ablations', 'uda.teacher_bn=eval')
    stages = read_manifest(out)['stages']
    assert sorted(stages) == sorted(['init', 'oracle', 'r1_st_cu',
                                     'r1_st_ca', 'r1_proto_ca'])
    for name in ('init', 'oracle', 'r1_st_ca', 'r1_proto_ca'):
        assert stages[name] == base[name], name
    st = stages['r1_st_cu']
    assert st['status'] == 'done' and st['options']['uda.teacher_bn'] == \
        'eval'
    assert st['outputs']['checkpoint']['path'].startswith(out + os.sep)
    with open(osp.join(work_dir, 'ablations', 'summary.json')) as f:
        (ablation,) = json.load(f)['ablations']
    (row,) = ablation['stages']
    assert row['stage'] == 'r1_st_cu'
    assert row['mIoU_per_seed'] == [st['metrics']['mIoU']]
    assert row['default_per_seed'] == [base['r1_st_cu']['metrics']['mIoU']]
    again = run_pipeline(cfg, work_dir, *args, cwd=cwd)
    assert skipped_stages(again.stdout) == ['r1_st_cu'], again.stdout
    assert read_manifest(out)['stages'] == stages


def test_ablation_refuses_a_key_no_stage_has(tiny_pipeline, killed_twice,
                                             capsys):
    spec = importlib.util.spec_from_file_location('ddb_pipeline', PIPELINE)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    work_dir = killed_twice['work_dir']
    for args, said in ((['--ablate', 'uda.no_such_switch=1'],
                        'no stage\'s config has uda.no_such_switch'),
                       (['--ablate', 'renormalize'], 'expected KEY=VALUE'),
                       (['--ablate-stages', 'r1_ckd'], 'needs --ablate'),
                       (['--no-downstream'], 'needs --ablate')):
        with pytest.raises(SystemExit) as exc:
            tool.main([tiny_pipeline['pipeline'], '--work-dir', work_dir,
                       '--gpus', '0', *args])
        assert exc.value.code == 2, args
        assert said in capsys.readouterr().err, args
    fresh = str(osp.join(tiny_pipeline['root'], 'never_run'))
    with pytest.raises(SystemExit):
        tool.main([tiny_pipeline['pipeline'], '--work-dir', fresh, '--gpus',
                   '0', '--ablate', 'uda.renormalize=True'])
    assert 'run the pipeline first' in capsys.readouterr().err


def test_changed_config_reruns_only_that_stage_and_says_why(tiny_pipeline,
                                                            killed_twice):
    work_dir = killed_twice['work_dir']
    before = read_manifest(work_dir)['stages']
    ckd = tiny_pipeline['ckd']
    with open(ckd) as f:
        text = f.read()
    assert 'proto_temperature=1.0' in text
    with open(ckd, 'w') as f:
        f.write(text.replace('proto_temperature=1.0', 'proto_temperature=2.0'))
    olds = set(glob.glob(osp.join(work_dir, 'r1_ckd.old-*')))

    res = run_pipeline(tiny_pipeline['pipeline'], work_dir,
                       cwd=tiny_pipeline['root'])
    assert skipped_stages(res.stdout) == STAGES[:-1], res.stdout
    assert '[r1_ckd] its config or inputs changed since it ran' in res.stdout
    after = assert_complete(work_dir)['stages']
    for name in STAGES[:-1]:
        assert after[name] == before[name], name
    rec = after['r1_ckd']
    assert 'config or inputs changed' in rec['reason']
    assert rec['signature'] != before['r1_ckd']['signature']
    assert rec['started'] != before['r1_ckd']['started']
    # the previous outputs were moved aside, not deleted
    new = set(glob.glob(osp.join(work_dir, 'r1_ckd.old-*'))) - olds
    assert len(new) == 1, new
    old_ckpt = before['r1_ckd']['outputs']['checkpoint']
    moved = osp.join(new.pop(), osp.basename(old_ckpt['path']))
    from mmseg_ddb.pipeline import sha256_file
    assert sha256_file(moved) == old_ckpt['sha256']
    # the config dumps of the old and the new run
    for folder, value in ((osp.dirname(moved), '1.0'),
                          (osp.join(work_dir, 'r1_ckd'), '2.0')):
        with open(osp.join(folder, 'tiny_ckd.py')) as f:
            found = re.findall(r'proto_temperature\s*=\s*([\d.]+)', f.read())
        assert found == [value], (folder, found)


def test_from_and_only_force_the_named_stages(tiny_pipeline, killed_twice):
    work_dir = killed_twice['work_dir']
    cfg, cwd = tiny_pipeline['pipeline'], tiny_pipeline['root']
    before = read_manifest(work_dir)['stages']

    res = run_pipeline(cfg, work_dir, '--only', 'r1_proto_ca', cwd=cwd)
    assert stage_lines(res.stdout) == ['r1_proto_ca'], res.stdout
    middle = read_manifest(work_dir)['stages']
    assert middle['r1_proto_ca']['reason'] == 'rerun requested (--from/--only)'
    assert middle['r1_proto_ca']['started'] != before['r1_proto_ca'][
        'started']
    assert {k: v for k, v in middle.items() if k != 'r1_proto_ca'} == \
        {k: v for k, v in before.items() if k != 'r1_proto_ca'}

    res = run_pipeline(cfg, work_dir, '--from', 'r1_ckd', cwd=cwd)
    assert skipped_stages(res.stdout) == STAGES[:-1], res.stdout
    assert '[r1_ckd] rerun requested (--from/--only)' in res.stdout
    after = assert_complete(work_dir)['stages']
    assert after['r1_ckd']['reason'] == 'rerun requested (--from/--only)'
    assert after['r1_ckd']['started'] != middle['r1_ckd']['started']
    for name in STAGES[:-1]:
        assert after[name] == middle[name], name


def test_from_and_only_reject_bad_arguments(tiny_pipeline, tmp_path,
                                            capsys):
    spec = importlib.util.spec_from_file_location('ddb_pipeline', PIPELINE)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    work_dir = str(tmp_path / 'work')
    for args in (['--from', 'r1_ckd', '--only', 'init'],
                 ['--only', 'r9_ckd'], ['--from', 'nope']):
        with pytest.raises(SystemExit) as exc:
            tool.main([tiny_pipeline['pipeline'], '--work-dir', work_dir,
                       '--gpus', '0', *args])
        assert exc.value.code == 2, args
        err = capsys.readouterr().err
        assert err.startswith('error: '), err
    assert 'nope' in err
    assert not osp.exists(work_dir)  # a bad argument writes nothing


def test_multi_process_stages_and_parallel_paths(tmp_path):
    """--gpus 2 --parallel-paths on a CPU: training stages run as 2 gloo
    DDP processes (torchrun), and a round's ST paths run side by side, one
    process each."""
    import mmseg_ddb  # noqa: F401
    tiny = write_tiny_pipeline(str(tmp_path), evaluate=False)
    work_dir = str(tmp_path / 'work')
    run_pipeline(tiny['pipeline'], work_dir, '--gpus', '2',
                 '--parallel-paths', cwd=str(tmp_path))
    manifest = read_manifest(work_dir)
    assert manifest['pipeline']['stages'] == STAGES_NO_ORACLE
    assert all(status(manifest, s) == 'done' for s in STAGES_NO_ORACLE)
    for stage in ('init', 'r1_ckd'):
        log = open(osp.join(work_dir, stage, 'stage.log')).read()
        assert 'torch.distributed.run' in log
        assert 'Distributed training: True' in log and 'GPU number: 2' in log
    for stage in ('r1_st_cu', 'r1_st_ca'):
        log = open(osp.join(work_dir, stage, 'stage.log')).read()
        assert 'torch.distributed.run' not in log
    import datetime

    def interval(stage):
        rec = manifest['stages'][stage]
        start = datetime.datetime.strptime(rec['started'],
                                           '%Y-%m-%d %H:%M:%S')
        return start, start + datetime.timedelta(seconds=rec['seconds'])
    (a0, a1), (b0, b1) = interval('r1_st_cu'), interval('r1_st_ca')
    assert a0 <= b1 and b0 <= a1, 'the two ST paths did not overlap'


def test_slurm_launcher_runs_training_stages_through_srun(tiny_pipeline,
                                                         monkeypatch):
    """One task per GPU (at most 8 per node) with its GPU and CPU cores
    (CPUS_PER_TASK, default 5), the whole step ended when one task fails."""
    from mmseg_ddb.pipeline import PipelineRunner
    from mmseg_ddb.pipeline.launch import PipelineError
    monkeypatch.delenv('CPUS_PER_TASK', raising=False)
    runner = PipelineRunner(tiny_pipeline['pipeline'], '/tmp/unused',
                            gpus=4, launcher='slurm')
    cmd = runner._train_cmd(runner.stage('r1_st_cu'), {'a.b': 'c'},
                            resume=True, gpus=4, port=1)
    assert cmd[:6] == ['srun', '--ntasks=4', '--ntasks-per-node=4',
                       '--gres=gpu:4', '--cpus-per-task=5',
                       '--kill-on-bad-exit=1']
    assert cmd[-2:] == ['--launcher', 'slurm']
    assert '--resume' in cmd and 'a.b=c' in cmd
    monkeypatch.setenv('CPUS_PER_TASK', '3')
    cmd = runner._train_cmd(runner.stage('r1_st_cu'), {}, resume=False,
                            gpus=16, port=1)
    assert cmd[:6] == ['srun', '--ntasks=16', '--ntasks-per-node=8',
                       '--gres=gpu:8', '--cpus-per-task=3',
                       '--kill-on-bad-exit=1']
    monkeypatch.setenv('CPUS_PER_TASK', 'many')
    with pytest.raises(PipelineError, match='CPUS_PER_TASK'):
        runner._train_cmd(runner.stage('r1_st_cu'), {}, resume=False,
                          gpus=1, port=1)


def test_pipeline_runs_from_another_folder(tmp_path):
    """The stage configs' relative paths (configs/...) are found in the
    repository when the command runs elsewhere."""
    config = osp.join(REPO, 'configs', 'synthetic', 'ddb_synthetic.py')
    res = run_pipeline(config, str(tmp_path / 'work'), '--dry-run',
                       cwd=str(tmp_path))
    assert 'r2_ckd' in res.stdout
    assert osp.join(REPO, 'configs', 'synthetic', 'ckd_synthetic.py') in \
        res.stdout


def test_amp_reaches_every_tool_and_the_signature():
    from mmseg_ddb.pipeline import PipelineRunner
    config = osp.join(REPO, 'configs', 'synthetic', 'ddb_synthetic.py')
    plain = PipelineRunner(config, '/tmp/unused-work-dir')
    amp = PipelineRunner(config, '/tmp/unused-work-dir', amp=True)
    stage = amp.stage('r1_st_cu')
    assert '--amp' in amp._train_cmd(stage, {}, False, 1, 29500)
    assert '--amp' not in plain._train_cmd(stage, {}, False, 1, 29500)
    inputs = dict(init=dict(path='x.pth', sha256='0'))
    assert amp.signature(stage, inputs, {}) != plain.signature(
        stage, inputs, {})


# -- the transformer variants --------------------------------------------------
def write_two_round_pipeline(folder, net):
    """The whole two-round schedule of the tiny ``net`` variant of the
    synthetic demo (``configs/synthetic/*_daformer_<net>_synthetic.py``):
    a source-only ``init`` of the same network (2 iterations, not tested)
    whose backbone initialises every fresh model, then per round ST-cu /
    ST-ca, their prototypes and CKD, 2 iterations each, no evaluation (the
    test runs tools/test.py once, on the last student)."""
    from mmengine.config import Config

    from mmseg_ddb.datasets.synthetic import ensure_synthetic
    data_root = osp.join(folder, 'synthetic')
    ensure_synthetic(data_root, progress=False, **data_args())
    model = Config.fromfile(osp.join(
        REPO, 'configs', '_base_', 'models', f'daformer_{net}.py')).model.to_dict()
    model['data_preprocessor']['size'] = CROP
    # no TensorBoard writer: its import is half of a tiny stage's time
    quiet = "visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])\n"
    init = write_leaf(folder, f'{net}_init', 'source_only_synthetic.py', data_root, 2,
                      extra=f'model = {dict(model, _delete_=True)!r}\n' + quiet)
    rounds = []
    for prefix in ('', 'r2_'):
        leaves = [write_leaf(folder, f'{net}_{prefix}{stage}',
                             f'{prefix}{stage}_daformer_{net}_synthetic.py', data_root, 2,
                             extra=quiet)
                  for stage in ('st_cu', 'st_ca', 'ckd')]
        for leaf in leaves:
            assert_tiny(leaf, data_root)
        rounds.append(dict(st=dict(cu=leaves[0], ca=leaves[1]), ckd=leaves[2]))
    cfg = osp.join(folder, f'{net}_pipeline.py')
    with open(cfg, 'w') as f:
        f.write(f"""\
pipeline = dict(
    task='tiny',
    init=dict(config={init!r}, key='model.backbone.init_cfg.checkpoint',
              evaluate=False),
    rounds={rounds!r},
    prototype_epochs=1,
    evaluate=False)
""")
    return dict(pipeline=cfg, data_root=data_root, r2_ckd=rounds[1]['ckd'])


@pytest.mark.parametrize('net, feature_dim', [('mit-tiny', 32)])
def test_two_round_transformer_pipeline_then_test_and_infer(tmp_path, net, feature_dim):
    """The tiny MiT variant through the whole two-round pipeline with
    --amp (train.py, cal_prototype.py on the DAFormer-style head's fused
    feature, round 2 warm-started from the round-1 CKD student), then
    tools/test.py --amp and tools/infer.py on the last CKD student."""
    import torch

    import mmseg_ddb  # noqa: F401
    tiny = write_two_round_pipeline(str(tmp_path), net)
    work_dir = str(tmp_path / 'work')
    run_pipeline(tiny['pipeline'], work_dir, '--amp', cwd=str(tmp_path))
    manifest = read_manifest(work_dir)
    stages = manifest['stages']
    names = ['init'] + [f'r{r}_{s}' for r in (1, 2) for s in
                        ('st_cu', 'st_ca', 'proto_cu', 'proto_ca', 'ckd')]
    assert manifest['pipeline']['stages'] == names
    assert all(stages[s]['status'] == 'done' for s in names), stages
    r1_ckd = stages['r1_ckd']['outputs']['checkpoint']['path']
    for path in ('cu', 'ca'):
        assert stages[f'r2_st_{path}']['options']['uda.distilled_model_path'] == r1_ckd
        for r in (1, 2):
            protos = torch.load(stages[f'r{r}_proto_{path}']['outputs']['prototypes']['path'],
                                map_location='cpu', weights_only=True)['prototypes']
            assert protos.shape == (19, feature_dim)
            assert torch.isfinite(protos).all() and protos.abs().sum() > 0
    log = open(osp.join(work_dir, 'r2_ckd', 'stage.log')).read()
    assert 'BF16OptimWrapper' in log, log[-2000:]

    student = stages['r2_ckd']['outputs']['checkpoint']['path']
    from mmseg_ddb.tools import infer, test
    record = test.main([tiny['r2_ckd'], student, '--amp', '--work-dir', str(tmp_path / 'test')])
    assert 0.0 <= record['mIoU'] <= 100.0, record
    images = osp.join(tiny['data_root'], 'cityscapes', 'leftImg8bit', 'val')
    out = str(tmp_path / 'infer')
    infer.main([tiny['r2_ckd'], student, images, '--out', out])
    masks = glob.glob(osp.join(out, '**', '*_mask.png'), recursive=True)
    assert len(masks) == DATA_ARGS['num_target_val'], masks
