from .hooks import (NaNGuardHook, NonFiniteLossError, RNGStateHook,
                    SafeCheckpointHook)

__all__ = ['NaNGuardHook', 'NonFiniteLossError', 'RNGStateHook',
           'SafeCheckpointHook']
