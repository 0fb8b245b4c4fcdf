"""Glue that makes mmsegmentation 1.2.2 run on mmcv-lite and current torch.

Applied once, on ``import mmseg_ddb``, before anything imports ``mmseg``
(DESIGN.md section 1). Five patches, each a no-op where it is not needed:

1. ``mmcv.ops`` stand-in. mmcv-lite ships no compiled ops, and mmseg imports
   ``mmcv.ops`` unguarded in a few files. We install a module that exposes the
   pure-PyTorch ``point_sample``/``bilinear_grid_sample`` and raises
   ``ModuleNotFoundError`` (the exception mmseg's own guards catch) for every
   other op. With a full mmcv build the real module is used.
2. ``torch.cuda.set_device`` inside mmengine's ``init_dist`` on a machine
   without CUDA (distributed training on CPU with gloo), and with more ranks
   on a node than it has GPUs (ranks share them round-robin, with gloo).
3. torch >= 2.6 loads with ``weights_only=True``; mmengine's checkpoints
   carry a few plain-data Python objects, which we allow-list (and nothing
   else), so user weights keep loading safely and our resume works.
4. Atomic local writes. mmengine writes checkpoints, ``last_checkpoint`` and
   the config copy in place, so a kill mid-write leaves a truncated file; its
   local file backend and ``Config.dump`` write through
   :func:`mmseg_ddb.utils.fileio.atomic_write` instead (temporary file, then
   rename).
5. ``Config.pretty_text`` remembered. mmengine formats the whole config with
   yapf each time it logs, dumps, sends or checkpoints it (5 times per run plus
   once per checkpoint), seconds each for a UDA config; the text of a config
   whose content was already formatted is reused (the same text, once).

All of it stays while the pins are upstream's (README, "Dependencies"): the
maintained fork (onedl-mmengine 0.10.12 + onedl-mmsegmentation 1.4.2) was
evaluated and not adopted. On it, 1 would be unnecessary (it guards every
``mmcv.ops`` import), 2 still needed, 4 not checked, and 3 not enough: its loader removes
the allow-list entries it shares with ours after each load, and falls back to
``weights_only=False`` when a safe load fails.
"""
import importlib
import importlib.util
import sys
import types

_APPLIED = False


def _has_compiled_mmcv_ops() -> bool:
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def _install_mmcv_ops_standin() -> None:
    if 'mmcv.ops' in sys.modules or _has_compiled_mmcv_ops():
        return
    import mmcv

    # Load the pure-PyTorch file directly, not through mmcv/ops/__init__.py,
    # which would import the missing extension.
    path = mmcv.__path__[0] + '/ops/point_sample.py'
    spec = importlib.util.spec_from_file_location('mmcv.ops.point_sample', path)
    point_sample_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(point_sample_mod)

    ops = types.ModuleType('mmcv.ops')
    ops.__path__ = []  # a package, so `import mmcv.ops.x` fails cleanly
    ops.__doc__ = ('Stand-in for mmcv.ops installed by mmseg_ddb.compat: only '
                   'the pure-PyTorch point_sample helpers are available with '
                   'mmcv-lite.')
    ops.point_sample = point_sample_mod.point_sample
    ops.bilinear_grid_sample = point_sample_mod.bilinear_grid_sample
    ops.point_sample_module = point_sample_mod

    def _needs_compiled(name):
        def op(*args, **kwargs):
            raise RuntimeError(
                f'mmcv.ops.{name} needs the compiled mmcv package (mmcv-lite '
                'has none). Install full mmcv to use it.')
        op.__name__ = name
        return op

    # imported unguarded by mmseg's focal loss: importable, fails if called
    ops.sigmoid_focal_loss = _needs_compiled('sigmoid_focal_loss')

    def __getattr__(name):  # noqa: N807 - module-level getattr hook
        if name.startswith('__'):
            raise AttributeError(name)
        raise ModuleNotFoundError(
            f'mmcv.ops.{name} needs the compiled mmcv package; mmseg_ddb '
            'runs on mmcv-lite, which has no compiled ops. Install mmcv '
            '(full) if you need this op.')

    ops.__getattr__ = __getattr__
    sys.modules['mmcv.ops'] = ops
    sys.modules['mmcv.ops.point_sample'] = point_sample_mod
    mmcv.ops = ops


_REAL_SET_DEVICE = None  # torch's own torch.cuda.set_device


def _patch_cpu_init_dist() -> None:
    """mmengine's ``init_dist`` calls ``torch.cuda.set_device(LOCAL_RANK)``:
    a no-op without CUDA (gloo on CPUs), and ``LOCAL_RANK % n`` when a node
    runs more ranks than its n GPUs (ranks sharing GPUs, see
    ``apis.train.shared_gpus``). Any other call is torch's own."""
    import os

    import torch
    global _REAL_SET_DEVICE
    if getattr(torch.cuda.set_device, '_ddb_patched', False):
        return
    _REAL_SET_DEVICE = torch.cuda.set_device

    def set_device(device):
        if not torch.cuda.is_available():
            return None
        count = torch.cuda.device_count()
        shared = int(os.environ.get('LOCAL_WORLD_SIZE', '0') or 0) > count
        if shared and isinstance(device, int) and device >= count:
            device %= count
        return _REAL_SET_DEVICE(device)

    set_device._ddb_patched = True
    set_device.__doc__ = _REAL_SET_DEVICE.__doc__
    torch.cuda.set_device = set_device


def _allow_checkpoint_types() -> None:
    """Let ``torch.load(weights_only=True)`` read mmengine's own checkpoints.

    Their ``message_hub`` holds ``HistoryBuffer`` objects with numpy arrays.
    We allow-list exactly those plain-data types instead of turning the
    weights-only protection off, and stop ``HistoryBuffer`` from pickling its
    class-level table of statistics methods (``getattr`` references, which a
    safe loader must refuse); it rebuilds that table itself on load.
    """
    import _codecs

    import numpy as np
    import torch
    from mmengine.logging.history_buffer import HistoryBuffer
    try:
        multiarray = np._core.multiarray
    except AttributeError:  # numpy < 2
        multiarray = np.core.multiarray
    dtypes = {type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
        np.uint32, np.uint64, np.float16, np.float32, np.float64)}
    torch.serialization.add_safe_globals(
        [HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct,
         multiarray.scalar, _codecs.encode, *dtypes])

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop('statistics_methods', None)
        return state

    HistoryBuffer.__getstate__ = __getstate__


def _atomic_local_writes() -> None:
    """mmengine writes checkpoints, ``last_checkpoint`` and config copies in
    place; a kill during the write leaves a truncated file. Write to a
    temporary file in the same folder and rename, so a file is either
    complete or absent."""
    from mmengine.fileio.backends.local_backend import LocalBackend

    from .utils.fileio import atomic_write
    if getattr(LocalBackend, '_ddb_atomic', False):
        return

    def put(self, obj, filepath):
        atomic_write(filepath, obj, 'wb')

    def put_text(self, obj, filepath, encoding='utf-8'):
        atomic_write(filepath, obj, 'w', encoding)

    LocalBackend.put = put
    LocalBackend.put_text = put_text
    LocalBackend._ddb_atomic = True

    # the config copies the runner dumps into the work dir (``Config.dump``
    # writes ``.py`` files in place)
    from mmengine.config import Config
    dump = Config.dump

    def atomic_dump(self, file=None):
        if file is not None and str(file).endswith('.py'):
            atomic_write(str(file), self.pretty_text, 'w', 'utf-8')
            return None
        return dump(self, file)

    Config.dump = atomic_dump


_PRETTY_TEXT = {}  # the config's content -> its formatted text


def _remember_pretty_text() -> None:
    """Format a config's text once per content (see the module docstring)."""
    from mmengine.config import Config
    formatted = Config.pretty_text
    if getattr(formatted.fget, '_ddb_remembered', False):
        return

    def pretty_text(self) -> str:
        key = (self._format_python_code, repr(self._cfg_dict))
        text = _PRETTY_TEXT.get(key)
        if text is None:
            text = formatted.fget(self)
            if len(_PRETTY_TEXT) >= 16:
                _PRETTY_TEXT.clear()
            _PRETTY_TEXT[key] = text
        return text

    pretty_text._ddb_remembered = True
    pretty_text.__wrapped__ = formatted.fget  # mmengine's formatter
    pretty_text.__doc__ = formatted.fget.__doc__
    Config.pretty_text = property(pretty_text)


def apply() -> None:
    """Apply every patch once. Safe to call many times."""
    global _APPLIED
    if _APPLIED:
        return
    import warnings
    warnings.filterwarnings(
        'ignore', message='Fail to import ``MultiScaleDeformableAttention``')
    _install_mmcv_ops_standin()
    _patch_cpu_init_dist()
    _allow_checkpoint_types()
    _atomic_local_writes()
    _remember_pretty_text()
    _APPLIED = True
