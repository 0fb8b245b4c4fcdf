"""Uniform error reporting for the command-line tools."""
import logging
import os.path as osp
import sys
from functools import wraps

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


def user_errors_to_exit(main):
    """Run ``main``; a :class:`DDBError` (also when raised inside a data
    worker) or an unknown registry type prints one ``error:`` line and exits
    with status 2 instead of a traceback."""

    @wraps(main)
    def wrapper(*args, **kwargs):
        # a log file that cannot be written (disk full) must not print a
        # traceback per log line; the failing write of an output reports it
        logging.raiseExceptions = False
        try:
            return main(*args, **kwargs)
        except DDBError as exc:
            print(f'error: {one_line(exc)}', file=sys.stderr)
            sys.exit(2)
        except KeyError as exc:
            msg = str(exc)
            if 'registry' not in msg:
                raise
            print(f'error: {msg.strip(chr(34)).strip(chr(39)).splitlines()[0]}',
                  file=sys.stderr)
            sys.exit(2)
        except TypeError as exc:
            built = _built_class(exc)
            if built is None:
                raise
            reason = flat(exc)
            reason = reason.split('() ', 1)[-1]  # drop "Cls.__init__() "
            print(f'error: config: {built} {reason}; check that key in the '
                  'config file (or --cfg-options) against the arguments of '
                  f'{built}', file=sys.stderr)
            sys.exit(2)
        except OSError as exc:
            # the environment: disk full, no permission, a missing path
            where = ' -> '.join(str(f) for f in (exc.filename, exc.filename2)
                                if f)
            reason = exc.strerror or flat(exc)
            folder = osp.dirname(osp.abspath(str(exc.filename or '.')))
            print(f'error: {where + ": " if where else ""}{reason}; '
                  f'{_hint(folder, exc)}', file=sys.stderr)
            sys.exit(2)
        except Exception as exc:
            # errors from DataLoader workers come back as a different type
            # whose message carries the original one
            if 'mmseg_ddb.errors' in str(exc) or type(exc).__name__ in (
                    'DataError', 'ConfigError', 'CheckpointError'):
                print(f'error: {one_line(exc)}', file=sys.stderr)
                sys.exit(2)
            raise

    return wrapper
