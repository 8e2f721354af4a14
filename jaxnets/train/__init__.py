"""Training: TrainState (a pytree), the jitted step, evaluation, ``fit`` over arrays, checkpoints and metrics.

Train any jaxnets model on your own arrays::

    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
    result = jaxnets.train.fit(model, x, y, x_test, y_test, optimizer=optax.adam(1e-2), epochs=20, batch_size=32)
    jaxnets.train.evaluate(model, result.state.params, result.state.model_state, x_test, y_test)
"""

from jaxnets.train._adversarial import dann_step, gan_step
from jaxnets.train._latent import avb_step, dynamically_binarised
from jaxnets.train._recipes import DTYPES, augmented, mixed_precision
from jaxnets.train._saved import Trained, class_probabilities, evaluate_trained, export, load, read_examples
from jaxnets.train._weights import WEIGHTS, model_record, read_weights, save_weights
from jaxnets.train._word2vec import word2vec_step
from jaxnets.train.checkpoint import CHECKPOINT, CheckpointError, load_checkpoint, read_config, save_checkpoint
from jaxnets.train.config import (
    DATASET_DEFAULTS,
    MODEL_DEFAULTS,
    ParameterError,
    TrainConfig,
    build_for,
    build_model,
    check_model_args,
    load_config,
    model_options,
    run,
    run_record,
)
from jaxnets.train.loop import FitResult, RunOptions, fit, validation_split
from jaxnets.train.metrics import CURVES, METRICS, append_metrics, plot_curves, read_metrics
from jaxnets.train.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule
from jaxnets.train.parallel import Shardings, data_parallel
from jaxnets.train.pretrain import pretrain_stack
from jaxnets.train.safety import CheckpointWriteError, TrainingDiverged, TrainingInterrupted, WorkdirBusy, WorkdirError
from jaxnets.train.sampling import load_text_run, sample_text
from jaxnets.train.state import TrainState, create_train_state, epoch_key
from jaxnets.train.step import (
    TrainStep,
    evaluate,
    evaluate_state,
    indexed_train_step,
    make_eval_fn,
    make_indexed_train_step,
    make_train_step,
    supervised,
)

__all__ = [
    "CHECKPOINT",
    "CURVES",
    "CheckpointError",
    "CheckpointWriteError",
    "DATASET_DEFAULTS",
    "DTYPES",
    "FitResult",
    "METRICS",
    "MODEL_DEFAULTS",
    "OPTIMIZERS",
    "ParameterError",
    "RunOptions",
    "SCHEDULES",
    "Shardings",
    "TrainConfig",
    "TrainState",
    "TrainStep",
    "Trained",
    "TrainingDiverged",
    "TrainingInterrupted",
    "WEIGHTS",
    "WorkdirBusy",
    "WorkdirError",
    "append_metrics",
    "augmented",
    "avb_step",
    "build_for",
    "build_model",
    "check_model_args",
    "class_probabilities",
    "create_train_state",
    "dann_step",
    "data_parallel",
    "dynamically_binarised",
    "epoch_key",
    "evaluate",
    "evaluate_state",
    "evaluate_trained",
    "export",
    "fit",
    "gan_step",
    "indexed_train_step",
    "load",
    "load_checkpoint",
    "load_config",
    "load_text_run",
    "make_eval_fn",
    "make_indexed_train_step",
    "make_optimizer",
    "make_schedule",
    "make_train_step",
    "mixed_precision",
    "model_options",
    "model_record",
    "plot_curves",
    "pretrain_stack",
    "read_config",
    "read_examples",
    "read_metrics",
    "read_weights",
    "run",
    "run_record",
    "sample_text",
    "save_checkpoint",
    "save_weights",
    "supervised",
    "validation_split",
    "word2vec_step",
]
