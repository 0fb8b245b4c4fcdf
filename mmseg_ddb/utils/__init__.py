from .checkpoint import (
                         EMA_TEACHER_PREFIX,
                         STUDENT_PREFIXES,
                         check_state_dict,
                         checkpoint_layout,
                         deployed_weights,
                         load_model_weights,
                         load_weights_file,
                         select_prefix,
                         state_dict_of,
)
from .cli import user_errors_to_exit
from .config import check_cfg_options, iter_dicts, load_config, sync_bn_to_bn, use_channels_last
from .device import check_device, check_gpu_id
from .prototype_file import load_prototypes, save_prototypes

__all__ = [
    'EMA_TEACHER_PREFIX', 'STUDENT_PREFIXES', 'check_state_dict',
    'checkpoint_layout', 'deployed_weights', 'load_model_weights',
    'load_weights_file', 'select_prefix', 'state_dict_of',
    'user_errors_to_exit', 'load_prototypes', 'save_prototypes',
    'check_cfg_options', 'iter_dicts', 'load_config', 'sync_bn_to_bn',
    'use_channels_last',
    'check_device', 'check_gpu_id',
]
