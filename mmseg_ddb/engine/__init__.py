from .debug_images import UDADebugImageHook
from .hooks import (
                    DeferredRuntimeInfoHook,
                    FinalMetricsHook,
                    NaNGuardHook,
                    NonFiniteLossError,
                    RNGStateHook,
                    SafeCheckpointHook,
)
from .loops import DDBTestLoop
from .monitor_hook import PseudoLabelMonitorHook
from .optim import BF16OptimWrapper, auto_amp_optim_wrapper
from .runner import DDBRunner

__all__ = ['BF16OptimWrapper', 'DDBRunner', 'DDBTestLoop',
           'auto_amp_optim_wrapper', 'DeferredRuntimeInfoHook', 'FinalMetricsHook',
           'NaNGuardHook', 'NonFiniteLossError', 'PseudoLabelMonitorHook',
           'RNGStateHook',
           'SafeCheckpointHook', 'UDADebugImageHook']
