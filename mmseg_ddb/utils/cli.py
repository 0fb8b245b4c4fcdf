"""Uniform error reporting for the command-line tools."""
import logging
import os.path as osp
import sys
from functools import wraps
from typing import Callable, Optional

from ..errors import DDBError, flat, one_line
from .fileio import _hint


def _built_class(exc: TypeError):
    """The class whose construction from a config dict raised ``exc`` (an
    unknown or missing argument), or None when ``exc`` is not such an error.

    Only a TypeError about the arguments raised by the class called directly
    from mmengine's ``build_from_cfg`` counts; any other TypeError is a bug
    and keeps its traceback."""
    msg = str(exc)
    if 'unexpected keyword argument' not in msg and \
            'required positional argument' not in msg:
        return None
    tb, built, frames = exc.__traceback__, None, []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for i, frame in enumerate(frames):
        code = frame.f_code
        if code.co_name == 'build_from_cfg' and \
                code.co_filename.endswith('build_functions.py'):
            cls = frame.f_locals.get('obj_cls')
            # raised by the constructor itself (or the base classes it
            # passes the config's arguments on to), not deeper inside it
            rest = frames[i + 1:]
            if cls is not None and rest and all(
                    f.f_code.co_name == '__init__' for f in rest):
                built = getattr(cls, '__name__', str(cls))
            elif cls is not None and not rest:
                built = getattr(cls, '__name__', str(cls))
    return built


def error_line(exc: BaseException, note: Optional[str] = None) -> Optional[str]:
    """The one line (without ``error:``) that reports ``exc`` as a user
    error, or None when ``exc`` is a bug that keeps its traceback.

    User errors: a :class:`DDBError` (also when raised inside a data worker),
    an unknown registry type, a config key that the built class does not take
    and an ``OSError`` of the environment (disk full, no permission, a
    missing path).

    Args:
        exc: The error.
        note (str, optional): Added to the line of an ``OSError`` (a
            :class:`~.fileio.WriteError` included): what a rerun will find,
            e.g. that finished outputs are kept.
    """
    if isinstance(exc, OSError) and note:
        line = error_line(exc)
        return f'{line.rstrip(".")}; {note}'
    if isinstance(exc, DDBError):
        return one_line(exc)
    if isinstance(exc, KeyError):
        msg = str(exc)
        if 'registry' not in msg:
            return None
        return msg.strip(chr(34)).strip(chr(39)).splitlines()[0]
    if isinstance(exc, TypeError):
        built = _built_class(exc)
        if built is None:
            return None
        reason = flat(exc).split('() ', 1)[-1]  # drop "Cls.__init__() "
        return (f'config: {built} {reason}; check that key in the config file '
                f'(or --cfg-options) against the arguments of {built}')
    if isinstance(exc, OSError):
        where = ' -> '.join(str(f) for f in (exc.filename, exc.filename2) if f)
        reason = exc.strerror or flat(exc)
        folder = osp.dirname(osp.abspath(str(exc.filename or '.')))
        return f'{where + ": " if where else ""}{reason}; {_hint(folder, exc)}'
    # errors from DataLoader workers come back as a different type whose
    # message carries the original one
    if 'mmseg_ddb.errors' in str(exc) or type(exc).__name__ in (
            'DataError', 'ConfigError', 'CheckpointError'):
        return one_line(exc)
    return None


def _print_error(line: str) -> None:
    print(f'error: {line}', file=sys.stderr, flush=True)


def user_errors_to_exit(main):
    """Run ``main``; a user error (:func:`error_line`) prints one ``error:``
    line and exits with status 2 instead of a traceback."""

    @wraps(main)
    def wrapper(*args, **kwargs):
        # a log file that cannot be written (disk full) must not print a
        # traceback per log line; the failing write of an output reports it
        logging.raiseExceptions = False
        try:
            return main(*args, **kwargs)
        except Exception as exc:
            line = error_line(exc)
            if line is None:
                raise
            _print_error(line)
            sys.exit(2)

    return wrapper


def exit_status(run: Callable, *args, note: Optional[str] = None) -> int:
    """``run(*args)``'s exit status for a ``main`` that returns one: 0, or 2
    after one ``error:`` line for a user error (:func:`error_line`, with
    ``note``); a bug keeps its traceback."""
    try:
        run(*args)
    except Exception as exc:
        line = error_line(exc, note)
        if line is None:
            raise
        _print_error(line)
        return 2
    return 0
