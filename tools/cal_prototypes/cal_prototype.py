"""Class prototypes of a Stage-1 (ST) model on the target training set.

A thin wrapper of :mod:`mmseg_ddb.tools.cal_prototype` (also installed as
``ddb-prototypes``); see there for the options.
"""
from mmseg_ddb.tools.cal_prototype import main, parse_args  # noqa: F401

if __name__ == '__main__':
    main()
