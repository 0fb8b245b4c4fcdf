from .distillation import CrossPathDistillation
from .self_training import SelfTraining
from .uda_segmentor import UDASegmentor

__all__ = ['CrossPathDistillation', 'SelfTraining', 'UDASegmentor']
