"""Config loading with errors that name the file or key."""
import os.path as osp
from typing import Iterable, Optional

from mmengine.config import Config

from ..errors import ConfigError


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` with a clear error for a missing or broken file,
    then the ``--cfg-options`` of a tool, checked by
    :func:`check_cfg_options` and merged in."""
    if not osp.isfile(path):
        raise ConfigError(f'config file {path} not found')
    try:
        cfg = Config.fromfile(path)
    except Exception as exc:  # syntax errors, bad _base_ paths, ...
        raise ConfigError(f'cannot load config {path}: {exc}') from exc
    check_cfg_options(cfg, cfg_options)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _known_types() -> set:
    """Every name registered in mmengine's and mmseg's registries."""
    import mmengine.registry as root
    import mmseg.registry as seg
    from mmengine.registry import Registry
    names = set()
    for module in (root, seg):
        for value in vars(module).values():
            if not isinstance(value, Registry):
                continue
            if hasattr(value, 'import_from_location'):
                value.import_from_location()  # lazy registrations
            stack = [value]
            while stack:
                reg = stack.pop()
                names.update(reg.module_dict)
                stack.extend(reg.children.values())
    return names


def check_cfg_options(cfg: Config, options: Optional[dict]) -> None:
    """Refuse ``--cfg-options`` keys that are not in the config and ``type``
    values that name no registered class.

    A key may add a new entry only to a dict that exists already and whose
    existing keys make a typo unlikely; we keep it strict: the full dotted
    path up to the last key must exist, and the last key must exist too
    unless its parent is empty. List indices (``a.0.b``) are allowed.
    """
    if not options:
        return
    types = None
    for key, value in options.items():
        node = cfg._cfg_dict if hasattr(cfg, '_cfg_dict') else cfg
        parts = key.split('.')
        for depth, part in enumerate(parts):
            here = '.'.join(parts[:depth + 1])
            if isinstance(node, (list, tuple)):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f'--cfg-options: {here!r}: index out of range or not '
                        f'a number (the list has {len(node)} items)')
                node = node[int(part)]
                continue
            if not hasattr(node, 'keys'):
                raise ConfigError(f'--cfg-options: {here!r}: '
                                  f"'{'.'.join(parts[:depth])}' is not a dict")
            if part not in node.keys():
                if depth == len(parts) - 1 and len(node.keys()) == 0:
                    break
                close = sorted(k for k in node.keys()
                               if k[:3] == part[:3])[:3]
                hint = f' Did you mean {", ".join(close)}?' if close else ''
                raise ConfigError(
                    f'--cfg-options: unknown config key {here!r}.{hint} '
                    'Check the spelling against the printed config '
                    '(python -c "from mmengine import Config; '
                    'print(Config.fromfile(CFG).pretty_text)").')
            node = node[part]
        if parts[-1] == 'type' and isinstance(value, str):
            types = _known_types() if types is None else types
            if value not in types:
                raise ConfigError(
                    f'--cfg-options: {key}={value!r} names no registered '
                    'class (model, dataset, transform, metric, hook, '
                    'optimizer or scheduler).')


def iter_dicts(node) -> Iterable[dict]:
    """Every dict inside a nested config structure, depth first."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from iter_dicts(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from iter_dicts(v)


def use_channels_last(model: dict) -> None:
    """``--channels-last`` of train.py / test.py / benchmark.py: the
    segmentor of the model config ``model`` (itself, or the ``segmentor`` of
    a UDA model) keeps its weights and inputs in channels_last format."""
    target = model.get('segmentor', model)
    if target.get('type') != 'DDBEncoderDecoder':
        raise ConfigError(
            f'--channels-last: model type {target.get("type")!r} is not '
            'DDBEncoderDecoder, which the option needs')
    target['channels_last'] = True


def sync_bn_to_bn(node) -> None:
    """Turn every ``SyncBN`` norm config under ``node`` (a model config, or
    a whole config) into plain ``BN``, in place: SyncBN needs a distributed
    run on GPUs; the layers and their parameters are the same."""
    for cfg in iter_dicts(node):
        if cfg.get('type') == 'SyncBN':
            cfg['type'] = 'BN'
