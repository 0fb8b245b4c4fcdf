"""Plot the curves of one or several training runs to one PNG.

A thin wrapper of :mod:`mmseg_ddb.tools.plot_run` (also installed as
``ddb-plot-run``); see there for the options.
"""
from mmseg_ddb.tools.plot_run import main, parse_args  # noqa: F401

if __name__ == '__main__':
    main()
