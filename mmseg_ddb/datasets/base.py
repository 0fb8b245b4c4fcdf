"""Shared behaviour of the DDB datasets: metainfo, checked file lists and the
optional built-in synthetic data."""
import os.path as osp
from typing import List, Optional, Tuple

from mmseg.datasets import BaseSegDataset

from ..errors import DataError
from ..utils.fileio import list_files
from .cityscapes_labels import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE

CITYSCAPES_METAINFO = dict(
    classes=tuple(CITYSCAPES_CLASSES),
    palette=[list(c) for c in CITYSCAPES_PALETTE])


class CheckedSegDatasetMixin:
    """Checks the on-disk layout before training starts.

    * the image folder exists and holds at least one image,
    * every image has its label and every label its image,
    * ``synthetic=dict(root=..., **generator_args)`` first generates the
      built-in synthetic domain shift into ``root`` if it is not there.

    Errors name the folder or file and say which converter to run.
    """

    #: how to produce the data, printed when it is missing
    prepare_hint = 'see data/README.md'

    def __init__(self, *args, synthetic: Optional[dict] = None, **kwargs):
        if synthetic is not None:
            from .synthetic import ensure_synthetic
            synthetic = dict(synthetic)
            ensure_synthetic(synthetic.pop('root'), progress=False,
                             **synthetic)
        super().__init__(*args, **kwargs)

    def folder_pairs(self) -> List[Tuple[Optional[str], Optional[str]]]:
        """The ``(image folder, label folder or None)`` pairs to read, in
        order: ``data_prefix``'s one pair by default. Datasets split into
        sub-folders (ACDC's weather conditions) return one pair per
        sub-folder; each is checked on its own."""
        return [(self.data_prefix.get('img_path', None),
                 self.data_prefix.get('seg_map_path', None))]

    def load_data_list(self) -> List[dict]:
        if self.ann_file and osp.isfile(self.ann_file):
            return super().load_data_list()
        data_list = []
        for img_dir, ann_dir in self.folder_pairs():
            data_list.extend(self._load_folder(img_dir, ann_dir))
        return data_list

    def _load_folder(self, img_dir: Optional[str],
                     ann_dir: Optional[str]) -> List[dict]:
        """The checked samples of one image folder and its label folder."""
        if not img_dir or not osp.isdir(img_dir):
            raise DataError(
                f'{type(self).__name__}: image folder {img_dir!r} does not '
                f'exist. Check data_root ({self.data_root!r}); {self.prepare_hint}.')
        images = list_files(img_dir, self.img_suffix, recursive=True, hidden=True)
        if not images:
            raise DataError(
                f'{type(self).__name__}: no "*{self.img_suffix}" image in '
                f'{img_dir!r} (empty split?). {self.prepare_hint}.')
        if ann_dir is None:
            if img_dir == self.data_prefix.get('img_path', None):
                # data_prefix's own folder: mmseg's listing, as always
                return super().load_data_list()
            return [
                dict(img_path=osp.join(img_dir, i), label_map=self.label_map,
                     reduce_zero_label=self.reduce_zero_label, seg_fields=[])
                for i in images
            ]
        if not osp.isdir(ann_dir):
            raise DataError(
                f'{type(self).__name__}: label folder {ann_dir!r} does not '
                f'exist; {self.prepare_hint}.')
        stems = {i[:-len(self.img_suffix)] for i in images}
        labels = {name[:-len(self.seg_map_suffix)]
                  for name in list_files(ann_dir, self.seg_map_suffix, recursive=True,
                                     hidden=True)}
        no_label = sorted(stems - labels)
        if no_label:
            raise DataError(
                f'{type(self).__name__}: {len(no_label)} image(s) without a '
                f'label, e.g. {osp.join(img_dir, no_label[0] + self.img_suffix)}'
                f' has no {osp.join(ann_dir, no_label[0] + self.seg_map_suffix)}'
                f'. Convert the labels first ({self.prepare_hint}).')
        no_image = sorted(labels - stems)
        if no_image:
            raise DataError(
                f'{type(self).__name__}: {len(no_image)} label(s) without an '
                f'image, e.g. {osp.join(ann_dir, no_image[0] + self.seg_map_suffix)}'
                f' has no {osp.join(img_dir, no_image[0] + self.img_suffix)}. '
                'Restore the image or remove the stray label.')
        return [
            dict(img_path=osp.join(img_dir, i),
                 seg_map_path=osp.join(
                     ann_dir, i[:-len(self.img_suffix)] + self.seg_map_suffix),
                 label_map=self.label_map,
                 reduce_zero_label=self.reduce_zero_label,
                 seg_fields=[]) for i in images
        ]


class CityscapesLabelDataset(CheckedSegDatasetMixin, BaseSegDataset):
    """A dataset labelled with the 19 Cityscapes train ids."""

    METAINFO = CITYSCAPES_METAINFO
