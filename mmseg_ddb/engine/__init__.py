from .hooks import NaNGuardHook, NonFiniteLossError, RNGStateHook

__all__ = ['NaNGuardHook', 'NonFiniteLossError', 'RNGStateHook']
