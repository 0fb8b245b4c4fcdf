from .loops import DDBTestLoop
from .optim import BF16OptimWrapper
from .hooks import (NaNGuardHook, NonFiniteLossError, RNGStateHook,
                    SafeCheckpointHook)

__all__ = ['BF16OptimWrapper', 'DDBTestLoop', 'NaNGuardHook', 'NonFiniteLossError', 'RNGStateHook',
           'SafeCheckpointHook']
