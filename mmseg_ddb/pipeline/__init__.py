from .manifest import Manifest, sha256_file
from .plan import Stage, build_plan
from .runner import PipelineError, PipelineRunner, format_summary

__all__ = ['Manifest', 'sha256_file', 'Stage', 'build_plan', 'PipelineError',
           'PipelineRunner', 'format_summary']
