"""Keep known, harmless MLflow messages out of the task log; every other warning still shows.

The trainer pickles its model on purpose (see ``pyfunc_model``), gives the dataset source and the model
signature explicitly, and its progress goes to the log line by line, so these say nothing to a reader.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: MLflow's loggers and the starts of the messages dropped from them.
_LOGGED = {
    "mlflow.pytorch": ("Saving pytorch model by Pickle or CloudPickle format requires",),
    "mlflow.pyfunc": ("Passing a Python object as `python_model` causes it to be serialized",),
}
#: Python warnings dropped (regexes matched at the start of the message).
_WARNED = (
    r"Hint: Inferred schema contains integer column\(s\)",
    r"The specified dataset source can be interpreted in multiple ways",
)
#: MLflow's tqdm bars (``Downloading artifacts: 0%|``) are off unless the environment turns them on.
PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


class _DropMessages(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Drop the known MLflow messages and progress bars inside the block."""
    filters = [(logging.getLogger(name), _DropMessages(prefixes)) for name, prefixes in _LOGGED.items()]
    for logger, drop in filters:
        logger.addFilter(drop)
    os.environ.setdefault(PROGRESS_BAR_ENV, "false")
    try:
        with warnings.catch_warnings():
            for pattern in _WARNED:
                warnings.filterwarnings("ignore", message=pattern, category=UserWarning)
            yield
    finally:
        for logger, drop in filters:
            logger.removeFilter(drop)
