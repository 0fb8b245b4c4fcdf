"""Time a supervised, an ST and a CKD step and inference side by side.

A thin wrapper of :mod:`mmseg_ddb.tools.benchmark` (also installed as
``ddb-benchmark``); see there for the options.
"""
from mmseg_ddb.tools.benchmark import main, parse_args  # noqa: F401

if __name__ == '__main__':
    main()
