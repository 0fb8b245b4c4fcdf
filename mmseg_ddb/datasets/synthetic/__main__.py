"""``python -m mmseg_ddb.datasets.synthetic``: see :mod:`.cli`."""
from .cli import main

if __name__ == '__main__':
    main()
