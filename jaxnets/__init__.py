"""jaxnets: the classic deep-learning canon as pure JAX functions over named parameter pytrees.

``import jaxnets as jn`` reaches every public package: ``jn.nn`` (layers), ``jn.losses``, ``jn.models`` (builders,
``build``, ``REGISTRY``), ``jn.data``, ``jn.train`` (``fit``), ``jn.viz`` (plots and image grids), ``jn.analysis``;
the model summaries at the top (``jn.summary``, ``jn.count_params``, ``jn.model_summary``), and a trained run's model
(``jn.load(workdir)``, ``jn.export(workdir, path)``). Implementation modules have a leading underscore; the names a
package exports are flat and listed in its ``__all__``.
"""

from jaxnets import analysis, data, losses, models, nn, train, viz
from jaxnets._summary import LayerInfo, count_params, layer_table, model_summary, num_params, summary
from jaxnets.models import Model, build
from jaxnets.train import export, load

__all__ = [
    "LayerInfo",
    "Model",
    "analysis",
    "build",
    "count_params",
    "data",
    "export",
    "layer_table",
    "load",
    "losses",
    "model_summary",
    "models",
    "nn",
    "num_params",
    "summary",
    "train",
    "viz",
]
__version__ = "0.2.0"  # the one place of the version (pyproject reads it)
