"""Training: TrainState (a pytree), the jitted step, evaluation, ``fit`` over arrays, checkpoints and metrics.

Train any jaxnets model on your own arrays::

    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
    result = jaxnets.train.fit(model, x, y, x_test, y_test, optimizer=optax.adam(1e-2), epochs=20, batch_size=32)
    jaxnets.train.evaluate(model, result.state.params, result.state.model_state, x_test, y_test)
"""

from jaxnets.train.checkpoint import CHECKPOINT, CheckpointError, load_checkpoint, read_config, save_checkpoint
from jaxnets.train.loop import FitResult, fit
from jaxnets.train.metrics import CURVES, METRICS, append_metrics, plot_curves, read_metrics
from jaxnets.train.optim import OPTIMIZERS, SCHEDULES, make_optimizer
from jaxnets.train.parallel import Shardings, data_parallel
from jaxnets.train.run import DATASET_DEFAULTS, MODEL_DEFAULTS, TrainConfig, build_for, run
from jaxnets.train.safety import CheckpointWriteError, TrainingDiverged, TrainingInterrupted, WorkdirBusy, WorkdirError
from jaxnets.train.state import TrainState, create_train_state
from jaxnets.train.step import evaluate, make_eval_fn, make_indexed_train_step, make_train_step

__all__ = ["CHECKPOINT", "CURVES", "DATASET_DEFAULTS", "METRICS", "MODEL_DEFAULTS", "OPTIMIZERS", "SCHEDULES",
           "CheckpointError", "FitResult", "Shardings", "TrainConfig", "TrainState", "append_metrics", "build_for",
           "create_train_state", "data_parallel", "evaluate", "fit", "load_checkpoint", "make_eval_fn",
           "make_indexed_train_step", "make_optimizer", "make_train_step", "plot_curves", "read_config",
           "read_metrics", "run", "save_checkpoint", "CheckpointWriteError", "TrainingDiverged",
           "TrainingInterrupted", "WorkdirBusy", "WorkdirError"]
