"""restore: restore degraded scientific and photographic images with a generative prior.

Example:
    >>> import restore
    >>> sorted(restore.__all__)[:3]
    ['Pipeline', 'PipelineSpec', 'Restoration']
"""

from .errors import RestoreError
from .pipeline import Pipeline
from .restoration import Restoration
from .simulate import simulate
from .spec import PipelineSpec, load_recipe
from .version import __version__

__all__ = ["Pipeline", "PipelineSpec", "Restoration", "RestoreError", "__version__", "load_recipe", "simulate"]
