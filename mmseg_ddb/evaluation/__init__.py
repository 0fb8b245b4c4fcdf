from .iou import confusion_matrix, iou_from_confusion
from .metrics import DDBIoUMetric, format_table, metrics_record

__all__ = ['confusion_matrix', 'iou_from_confusion', 'DDBIoUMetric',
           'format_table', 'metrics_record']
