from .launch import PipelineError
from .manifest import Manifest, sha256_file
from .plan import Stage, build_plan
from .report import format_summary
from .runner import PipelineRunner
from .seeds import aggregate_seeds, run_seeds

__all__ = ['Manifest', 'sha256_file', 'Stage', 'build_plan', 'PipelineError',
           'PipelineRunner', 'format_summary', 'aggregate_seeds', 'run_seeds']
