from .loops import DDBTestLoop
from .optim import BF16OptimWrapper
from .hooks import (DeferredRuntimeInfoHook, NaNGuardHook, NonFiniteLossError,
                    RNGStateHook, SafeCheckpointHook)

__all__ = ['BF16OptimWrapper', 'DDBTestLoop', 'DeferredRuntimeInfoHook',
           'NaNGuardHook', 'NonFiniteLossError', 'RNGStateHook',
           'SafeCheckpointHook']
