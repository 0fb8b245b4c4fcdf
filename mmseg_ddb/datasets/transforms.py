"""Loading transforms that turn unreadable or malformed files into one clear
error naming the file (instead of a crash deep inside a worker)."""
import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from ..errors import DataError, flat


def _advice(exc: BaseException, default: str) -> str:
    """What to do: fix permissions for an unreadable file, else ``default``."""
    if isinstance(exc, PermissionError):
        return ('The file is not readable by this user; fix its permissions '
                '(e.g. chmod a+r) or run as a user who can read it.')
    return default


@TRANSFORMS.register_module()
class DDBLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that names the file it cannot read."""

    def transform(self, results: dict) -> dict:
        path = results.get('img_path')
        try:
            out = super().transform(results)
        except Exception as exc:  # cv2/PIL raise many different types
            raise DataError(
                f'cannot read image {path}: {type(exc).__name__}: {flat(exc)}. '
                + _advice(exc, 'Re-extract or re-download it, or delete it '
                          '(and its label).')) from exc
        if out is None or out.get('img') is None:
            raise DataError(f'cannot read image {path}: empty or corrupt file. '
                            'Re-extract or re-download it.')
        return out


@TRANSFORMS.register_module()
class DDBLoadAnnotations(LoadAnnotations):
    """Loads a train-id label map and checks it.

    Args:
        num_classes (int): Valid labels are ``0..num_classes-1`` and
            ``ignore_index``. Default: 19.
        ignore_index (int): Default: 255.
        size_mismatch (str): What to do when the label's size differs from
            the image's (``ori_shape``): ``'error'`` (default) or
            ``'resize'`` (nearest-neighbour resize of the label; a handful of
            GTA5 frames need it).
        **kwargs: :class:`mmseg.datasets.transforms.LoadAnnotations` args.
    """

    def __init__(self, num_classes: int = 19, ignore_index: int = 255,
                 size_mismatch: str = 'error', **kwargs):
        super().__init__(**kwargs)
        if size_mismatch not in ('error', 'resize'):
            raise ValueError("size_mismatch must be 'error' or 'resize', "
                             f'got {size_mismatch!r}')
        self.size_mismatch = size_mismatch
        self.valid = np.zeros(256, dtype=bool)
        self.valid[:num_classes] = True
        self.valid[ignore_index] = True
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        path = results.get('seg_map_path')
        try:
            super()._load_seg_map(results)
        except Exception as exc:
            raise DataError(
                f'cannot read label {path}: {type(exc).__name__}: {flat(exc)}. '
                + _advice(exc, 'Re-run the dataset converter.')) from exc
        label = results['gt_seg_map']
        if label.ndim != 2:
            raise DataError(
                f'label {path} has shape {label.shape}; expected a single-'
                'channel train-id map. Did you point at the raw/colour labels '
                'instead of the converted *_labelTrainIds.png?')
        ok = self.valid[label]
        if not ok.all():
            bad = np.unique(label[~ok])[:8].tolist()
            raise DataError(
                f'label {path} has values {bad} outside 0..{self.num_classes - 1}'
                f' and {self.ignore_index}; it is not a converted train-id '
                'label. Re-run the dataset converter.')
        ori = results.get('ori_shape')
        if ori is not None and tuple(label.shape) != tuple(ori[:2]):
            if self.size_mismatch == 'resize':
                results['gt_seg_map'] = mmcv.imresize(
                    label, (ori[1], ori[0]), interpolation='nearest')
            else:
                raise DataError(
                    f'label {path} is {label.shape[1]}x{label.shape[0]} but its '
                    f'image {results.get("img_path")} is {ori[1]}x{ori[0]}. '
                    'Fix the pair, or set size_mismatch="resize" in '
                    'DDBLoadAnnotations to resize such labels.')
