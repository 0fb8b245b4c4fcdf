"""``python -m mmseg_ddb.pipeline.zygote FD``: the warm-start zygote of
:mod:`mmseg_ddb.pipeline.warm` (its own module, so that ``-m`` does not run a
module the package has already imported)."""
import sys

from .warm import serve

if __name__ == '__main__':
    serve(int(sys.argv[1]))
