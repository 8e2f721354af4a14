"""jaxnets: the classic deep-learning canon as pure JAX functions over named parameter pytrees."""

from jaxnets import losses, models, nn
from jaxnets.models import Model, build
from jaxnets.summary import count_params, summary

__all__ = ["Model", "build", "count_params", "losses", "models", "nn", "summary"]
__version__ = "0.1.0"
