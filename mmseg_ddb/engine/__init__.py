from .loops import DDBTestLoop
from .hooks import (NaNGuardHook, NonFiniteLossError, RNGStateHook,
                    SafeCheckpointHook)

__all__ = ['DDBTestLoop', 'NaNGuardHook', 'NonFiniteLossError', 'RNGStateHook',
           'SafeCheckpointHook']
