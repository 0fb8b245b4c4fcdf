from .inference import colorize, inference, init_segmentor, list_images
from .prototypes import compute_prototypes, default_prototype_path, write_prototypes
from .test import (
                         SUPPORTED_METRICS,
                         evaluate,
                         metrics_record,
                         prepare_test_config,
                         write_json_atomic,
)
from .train import (
                         adapt_to_device,
                         build_runner,
                         check_schedule,
                         prepare_train_config,
                         release_process_group,
                         run_training,
                         use_amp,
                         wrap_uda,
)

__all__ = [
    'colorize', 'inference', 'init_segmentor', 'list_images',
    'compute_prototypes', 'default_prototype_path', 'write_prototypes',
    'SUPPORTED_METRICS', 'evaluate', 'metrics_record', 'prepare_test_config',
    'write_json_atomic', 'adapt_to_device', 'build_runner', 'check_schedule',
    'prepare_train_config', 'release_process_group', 'run_training', 'use_amp',
    'wrap_uda',
]
