"""``python -m mmseg_ddb.datasets.synthetic ROOT``: generate the synthetic data, optionally
with a preview grid."""
import argparse
from typing import List, Optional

import cv2

from .generate import generate_synthetic, make_preview


def main(argv: Optional[List[str]] = None) -> None:
    """Parse ``argv`` (default: ``sys.argv[1:]``), generate, optionally write a preview."""
    parser = argparse.ArgumentParser(
        description='Generate the built-in synthetic GTA-like -> Cityscapes-like domain shift.')
    parser.add_argument('root', help='output folder, e.g. data/synthetic')
    parser.add_argument('--num-source', type=int, default=400)
    parser.add_argument('--num-target-train', type=int, default=400)
    parser.add_argument('--num-target-val', type=int, default=100)
    parser.add_argument('--num-source-val', type=int, default=50)
    parser.add_argument('--num-generic', type=int, default=400,
                        help='images of the generic look (pretraining)')
    parser.add_argument('--thing-scale', type=int, default=200,
                        help='size of thin and small things, percent')
    parser.add_argument('--shift', type=int, default=200,
                        help='strength of the target look, percent')
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--width', type=int, default=256)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=None,
                        help='processes that render the images (default: one per CPU, '
                             'at most 8; the files do not depend on it)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--preview', metavar='PNG',
                        help='also write a grid of 4 source and 4 target images with labels')
    a = parser.parse_args(argv)
    meta = generate_synthetic(a.root, num_source=a.num_source,
                              num_target_train=a.num_target_train,
                              num_target_val=a.num_target_val,
                              num_source_val=a.num_source_val, num_generic=a.num_generic,
                              thing_scale=a.thing_scale, shift=a.shift,
                              height=a.height, width=a.width,
                              seed=a.seed, progress=not a.no_progress,
                              workers=a.workers)
    print(f"synthetic data in {a.root}: {meta['counts']}")
    if a.preview:
        grid = make_preview(a.root)
        if not cv2.imwrite(a.preview, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f'could not write {a.preview}')
        print(f'preview written to {a.preview}')

