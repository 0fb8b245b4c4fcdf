"""The toolkit of the dataset converters in ``tools/convert_datasets``
(METHOD.md section 3), kept out of the runtime ``datasets`` package.

Modules: ``labels`` (lookup tables to Cityscapes train ids, the Mapillary
name rules), ``files`` (checked reads, atomic image and text writes),
``rcs`` (rare-class-sampling statistics) and ``tasks`` (converting labels
on worker processes, the tool's exit status). The Cityscapes class table is
:mod:`mmseg_ddb.datasets.cityscapes_labels` (from cityscapesscripts, never
retyped); atomic writes, stale temporary files and listing follow
:mod:`mmseg_ddb.utils.fileio`, so readers skip the ``.tmp-*`` files of a
killed run and a rerun removes them.

These modules import neither mmseg nor torch themselves.
"""
from ..datasets.cityscapes_labels import (
                                          CITYSCAPES_CLASSES,
                                          CITYSCAPES_PALETTE,
                                          CITYSCAPES_TRAIN_ID_TO_ID,
                                          IGNORE_INDEX,
                                          NUM_CLASSES,
)
from ..errors import ConversionError
from ..utils.fileio import atomic_save, list_files
from .files import (
                                          atomic_write_image,
                                          atomic_write_lines,
                                          atomic_write_png,
                                          check_label_size,
                                          image_size,
                                          read_label,
                                          read_train_ids,
                                          require_dir,
                                          require_writable_dir,
)
from .labels import (
                                          apply_lut,
                                          id_to_train_id_lut,
                                          lut_from_mapping,
                                          mapillary_name_to_train_id,
                                          mapillary_to_trainid,
                                          train_id_to_color_lut,
                                          train_id_to_id_lut,
)
from .rcs import RCS_FILES, class_stats, write_rcs_stats
from .tasks import (
                                          LabelTask,
                                          convert_label,
                                          convert_labels,
                                          count_summary,
                                          label_tasks,
                                          run_parallel,
                                          run_tool,
)

__all__ = [
    'CITYSCAPES_CLASSES', 'CITYSCAPES_PALETTE', 'CITYSCAPES_TRAIN_ID_TO_ID',
    'IGNORE_INDEX', 'NUM_CLASSES', 'RCS_FILES', 'ConversionError', 'LabelTask',
    'apply_lut', 'atomic_save', 'atomic_write_image', 'atomic_write_lines',
    'atomic_write_png', 'check_label_size', 'class_stats', 'convert_label',
    'convert_labels', 'count_summary', 'id_to_train_id_lut', 'image_size',
    'label_tasks', 'list_files', 'lut_from_mapping',
    'mapillary_name_to_train_id', 'mapillary_to_trainid', 'read_label',
    'read_train_ids', 'require_dir', 'require_writable_dir', 'run_parallel',
    'run_tool', 'train_id_to_color_lut', 'train_id_to_id_lut',
    'write_rcs_stats'
]
