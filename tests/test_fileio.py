"""utils/fileio: the one rule for stale temporary files, the listing options
and the callable atomic write."""
import os
import subprocess
import sys

import pytest

from mmseg_ddb.errors import DataError
from mmseg_ddb.utils.fileio import atomic_save, list_files, remove_stale_tmp


def dead_pid() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def touch(path) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(b'half')


def test_stale_tmp_of_dead_writers_only(tmp_path):
    gone, alive = dead_pid(), os.getppid()
    names = [f'.tmp-{gone}-iter_4.pth', f'.tmp-{gone}.json',  # removed
             f'.tmp-{alive}-x.png', f'.tmp-{os.getpid()}-y.png',  # writers run
             '.tmp-probe-abc', 'iter_4.pth']  # no pid / not temporary
    for name in names:
        touch(tmp_path / name)
    touch(tmp_path / 'sub' / f'.tmp-{gone}-z.png')
    assert remove_stale_tmp(str(tmp_path)) == 2
    assert sorted(os.listdir(tmp_path)) == sorted(names[2:] + ['sub'])
    assert os.listdir(tmp_path / 'sub') == [f'.tmp-{gone}-z.png']
    assert remove_stale_tmp(str(tmp_path), recursive=True) == 1
    assert os.listdir(tmp_path / 'sub') == []
    assert remove_stale_tmp(str(tmp_path / 'missing')) == 0


def test_stale_tmp_folders_only_when_asked(tmp_path):
    gone = dead_pid()
    touch(tmp_path / f'.tmp-{gone}-entry' / 'iter_4.pth')  # a killed store
    touch(tmp_path / f'.tmp-{os.getpid()}-mine' / 'iter_4.pth')  # running
    assert remove_stale_tmp(str(tmp_path)) == 0  # files only
    assert remove_stale_tmp(str(tmp_path), folders=True) == 1
    assert os.listdir(tmp_path) == [f'.tmp-{os.getpid()}-mine']


def test_list_files_options(tmp_path):
    for name in ('b.png', 'a.png', 'a_labelTrainIds.png', '.hidden.png',
                 '.tmp-1-c.png', 'd.jpg', 'sub/e.png'):
        touch(tmp_path / name)
    root = str(tmp_path)
    assert list_files(root, '.png') == ['a.png', 'a_labelTrainIds.png', 'b.png']
    assert list_files(root, '.png', exclude_suffix='_labelTrainIds.png') == [
        'a.png', 'b.png']
    assert list_files(root, '.png', recursive=True, hidden=True) == [
        '.hidden.png', 'a.png', 'a_labelTrainIds.png', 'b.png',
        os.path.join('sub', 'e.png')]
    with pytest.raises(DataError, match='cannot list folder'):
        list_files(str(tmp_path / 'missing'))


def test_atomic_save_keeps_the_extension_and_leaves_no_tmp(tmp_path):
    seen = []

    def write(tmp):
        seen.append(os.path.basename(tmp))
        with open(tmp, 'w') as f:
            f.write('done')

    atomic_save(str(tmp_path / 'out' / 'x.png'), write)
    assert seen == [f'.tmp-{os.getpid()}-x.png']
    assert os.listdir(tmp_path / 'out') == ['x.png']
