"""The whole multi-round DDB schedule in one command, resumable.

A thin wrapper of :mod:`mmseg_ddb.tools.pipeline` (also installed as
``ddb-pipeline``); see there for the options.
"""
from mmseg_ddb.tools.pipeline import main, parse_args  # noqa: F401

if __name__ == '__main__':
    main()
