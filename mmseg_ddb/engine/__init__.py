from .debug_images import UDADebugImageHook
from .hooks import (
                    DeferredRuntimeInfoHook,
                    NaNGuardHook,
                    NonFiniteLossError,
                    RNGStateHook,
                    SafeCheckpointHook,
)
from .loops import DDBTestLoop
from .optim import BF16OptimWrapper

__all__ = ['BF16OptimWrapper', 'DDBTestLoop', 'DeferredRuntimeInfoHook',
           'NaNGuardHook', 'NonFiniteLossError', 'RNGStateHook',
           'SafeCheckpointHook', 'UDADebugImageHook']
