"""The command line, the top layer (it may import everything below it; nothing imports it). One module per command,
each with ``main(argv=None) -> int`` (the exit status), run by its console script (pyproject's
``[project.scripts]``) and by ``python -m jaxnets.cli.NAME``:

- ``jaxnets-train`` (``jaxnets.cli.train``; also ``python train.py``): flags -> ``TrainConfig`` -> ``train.run``;
- ``jaxnets-sample`` (``jaxnets.cli.sample``): text from a char_lstm run;
- ``jaxnets-summary`` (``jaxnets.cli.summary``): a model's layers, shapes and parameter counts;
- ``jaxnets-predict``, ``jaxnets-evaluate``: a trained run's predictions and test metrics;
- ``jaxnets-rl``: reinforcement-learning agents; ``jaxnets-word2vec``: word vectors from text files.

A new command is a module here with a ``main`` and one line in ``[project.scripts]``. Messages name flags; the
library's errors name its parameters, and ``_common.to_flags`` translates them.
"""

__all__: list[str] = []  # the commands are modules: jaxnets.cli.train, .sample, .summary
