"""Trainer configuration from command-line arguments and ``TRAINER_*`` environment variables."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from typing import NoReturn

from airflow_mlops_provider.contracts import PROBLEM_TYPES, ProblemType, RunParam, Split, Tag
from airflow_mlops_provider.core.io.splits import SplitError, SplitPolicy
from airflow_mlops_provider.training.errors import TrainerInputError

ENV_PREFIX = "TRAINER_"
#: The MLflow run the trainer logs into (MLflow's own variable), set by ``GPUTrainingOperator``.
RUN_ID_ENV = "MLFLOW_RUN_ID"
DEVICES = ("auto", "cpu", "cuda")
#: The options that ``GPUTrainingOperator(hyperparameters=...)`` may set (as ``snake_case`` keys); the others
#: (dataset, target, features, split) are the operator's own arguments.
HYPERPARAMETERS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "hidden_sizes",
    "embedding_dim",
    "seed",
    "device",
    "patience",
    "cpu_threads",
)

_EPILOG = f"""\
Every option can also be given as an environment variable {ENV_PREFIX}<OPTION> (upper case, dashes as
underscores, e.g. TRAINER_EPOCHS=20 or TRAINER_NUMERIC_FEATURES=a,b); a command-line value wins.

other environment:
  MLFLOW_TRACKING_URI        tracking server, e.g. http://127.0.0.1:5000 (required)
  MLFLOW_RUN_ID              existing run to log into (required); ended FINISHED on success, FAILED on error
  MLFLOW_TRACKING_TOKEN      bearer token, or MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD
  AWS_ENDPOINT_URL           S3-compatible endpoint for s3:// data URIs (or MLFLOW_S3_ENDPOINT_URL),
                             with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION

dataset: parquet or CSV with the feature columns, the target and either a split column whose values
are "train", "validation" (both required) and optionally "holdout", or a --split-policy that assigns
them, e.g. '{{"kind":"random","seed":0,"stratify":true}}' or '{{"kind":"temporal","time_column":"ts"}}'
(fields: kind, column, time_column, validation, holdout, seed, stratify). The run records the policy
(param {RunParam.SPLIT_POLICY}) and the digest of the holdout rows (tag {Tag.HOLDOUT_DIGEST}). NaN/inf in numeric
features is an error; a missing or unseen category maps to an out-of-vocabulary embedding.

exit codes: 0 success; 2 bad input, retrying cannot help (unusable arguments, environment, dataset or S3
credentials; message on stderr prefixed "trainer error:"); 1 any other failure; 143 stopped by SIGTERM.
The run in MLFLOW_RUN_ID ends FAILED in every case but 0.
"""


@dataclass(frozen=True)
class TrainConfig:
    """What to train on and how. The fields are the run's params (``RunParam`` names some of them).

    :param data_uri: dataset location: local path, ``file://`` or ``s3://`` URI (.parquet or .csv).
    :param target: the label column.
    :param problem_type: ``binary`` (label 0/1, predicts P(1)) or ``regression``.
    :param numeric_features: numeric input columns, standardized.
    :param categorical_features: categorical input columns, one embedding each.
    :param split_column: column holding ``train`` / ``validation`` / ``holdout``: read by the default
        policy, written by the others (set to the policy's column).
    :param split_policy: a :class:`~airflow_mlops_provider.core.io.splits.SplitPolicy` as JSON; empty: the
        ``column`` policy on ``split_column``. Normalized to the policy's compact JSON.
    :param epochs: maximum number of epochs.
    :param batch_size: rows per optimizer step.
    :param learning_rate: Adam learning rate.
    :param hidden_sizes: widths of the hidden layers.
    :param embedding_dim: width of each categorical embedding.
    :param seed: seed of every random generator.
    :param device: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
    :param patience: stop after this many epochs without a better validation loss; 0 never stops early.
    :param cpu_threads: torch CPU threads; 0 (the default) means the cores available to the process
        (:func:`available_cpus`). Results can depend on it: fix it to compare runs across machines.
    """

    data_uri: str
    target: str
    problem_type: str
    numeric_features: tuple[str, ...] = ()
    categorical_features: tuple[str, ...] = ()
    split_column: str = Split.COLUMN
    split_policy: str = ""
    epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 1e-3
    hidden_sizes: tuple[int, ...] = (64, 32)
    embedding_dim: int = 4
    seed: int = 42
    device: str = "auto"
    patience: int = 0
    cpu_threads: int = 0

    def __post_init__(self) -> None:
        policy = self._parse_policy()
        if self.cpu_threads == 0:
            object.__setattr__(self, "cpu_threads", available_cpus())
        # The policy's column is the split column (frozen: set once, here).
        object.__setattr__(self, "split_policy", policy.to_json())
        object.__setattr__(self, "split_column", policy.column)
        problems = []
        if policy.stratify and self.problem_type != ProblemType.BINARY:
            problems.append(f"a stratified split needs problem-type {ProblemType.BINARY!r}")
        if not self.data_uri or not self.target:
            problems.append("data-uri and target must not be empty")
        if self.problem_type not in PROBLEM_TYPES:
            problems.append(f"problem-type must be one of {PROBLEM_TYPES}, got {self.problem_type!r}")
        if self.device not in DEVICES:
            problems.append(f"device must be one of {DEVICES}, got {self.device!r}")
        if not self.features:
            problems.append("give at least one numeric or categorical feature")
        duplicated = sorted({f for f in self.features if self.features.count(f) > 1})
        if duplicated:
            problems.append(f"features listed more than once: {duplicated}")
        if self.target in self.features or self.split_column in self.features:
            problems.append("the target and split column must not be features")
        if self.split_column == self.target:
            problems.append(f"the split column must not be the target {self.target!r}")
        for name, value in (
            ("epochs", self.epochs),
            ("batch-size", self.batch_size),
            ("embedding-dim", self.embedding_dim),
        ):
            if value < 1:
                problems.append(f"{name} must be >= 1, got {value}")
        if self.cpu_threads < 1:
            problems.append(f"cpu-threads must be >= 0 (0: the cores available), got {self.cpu_threads}")
        if not 0 < self.learning_rate < math.inf:
            problems.append(f"learning-rate must be a finite number > 0, got {self.learning_rate}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            problems.append(f"hidden-sizes must be positive integers, got {self.hidden_sizes}")
        if self.patience < 0:
            problems.append(f"patience must be >= 0, got {self.patience}")
        if problems:
            raise TrainerInputError("; ".join(problems))

    def _parse_policy(self) -> SplitPolicy:
        if not self.split_policy:
            try:
                return SplitPolicy.existing(self.split_column)
            except SplitError as err:
                raise TrainerInputError(f"split-column: {err}") from err
        try:
            policy = SplitPolicy.from_json(self.split_policy)
        except SplitError as err:
            raise TrainerInputError(f"split-policy: {err}") from err
        if self.split_column not in (Split.COLUMN, policy.column):
            raise TrainerInputError(
                f"split-column {self.split_column!r} differs from the split policy's column {policy.column!r}"
            )
        return policy

    @property
    def split(self) -> SplitPolicy:
        """The split policy (``split_policy`` parsed)."""
        return SplitPolicy.from_json(self.split_policy)

    @property
    def features(self) -> list[str]:
        """All input columns: numeric first, then categorical."""
        return [*self.numeric_features, *self.categorical_features]

    def params(self) -> dict[str, str]:
        """The configuration as flat MLflow params (lists comma-joined)."""
        return {
            key: ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            for key, value in asdict(self).items()
        }


def available_cpus() -> int:
    """The cores this process may run on (its CPU affinity; the CPU count where affinity is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise TrainerInputError(f"{message} (see --help)")


def _names(value: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _names(value))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from err


def _show(value: object) -> str:
    return (",".join(map(str, value)) if isinstance(value, tuple) else str(value)) or "none"


def build_parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """Build the CLI parser; ``TRAINER_*`` variables in ``env`` become defaults.

    :param env: the environment; ``os.environ`` by default.
    """
    env = os.environ if env is None else env
    parser = _Parser(
        prog="python -m airflow_mlops_provider.training",
        description="Train a tabular MLP (PyTorch) and log it into an existing MLflow run.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    field_defaults = {field.name: field.default for field in fields(TrainConfig)}
    options: list[tuple[str, Callable[[str], object], str]] = [
        ("data-uri", str, "dataset: local path, file:// or s3:// URI (.parquet/.csv)"),
        ("target", str, "label column"),
        ("problem-type", str, f"one of {', '.join(PROBLEM_TYPES)}"),
        ("numeric-features", _names, "comma-separated numeric feature columns"),
        ("categorical-features", _names, "comma-separated categorical feature columns"),
        ("split-column", str, "column with train/validation/holdout (read, or written by --split-policy)"),
        ("split-policy", str, "JSON of a SplitPolicy (see below); without it, the --split-column column"),
        ("epochs", int, "maximum epochs"),
        ("batch-size", int, "rows per step"),
        ("learning-rate", float, "Adam learning rate"),
        ("hidden-sizes", _ints, "comma-separated hidden layer widths"),
        ("embedding-dim", int, "embedding width per categorical feature"),
        ("seed", int, "random seed"),
        ("device", str, f"one of {', '.join(DEVICES)}"),
        ("patience", int, "early-stopping patience in epochs (0: off)"),
        ("cpu-threads", int, "torch CPU threads; 0: the cores available to the process"),
    ]
    for name, kind, text in options:
        dest = name.replace("-", "_")
        env_name = ENV_PREFIX + dest.upper()
        field_default = field_defaults[dest]
        if field_default is MISSING:
            shown = "required"
            default = env.get(env_name)
        else:
            shown = f"default {_show(field_default)}"
            default = env.get(env_name, field_default)
        parser.add_argument(
            f"--{name}",
            dest=dest,
            type=kind,
            default=default,
            required=default is None,
            metavar=dest.upper(),
            help=f"{text} (env {env_name}; {shown})",
        )
    return parser


def parse_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> TrainConfig:
    """Parse ``argv`` (and ``TRAINER_*`` variables) into a validated :class:`TrainConfig`.

    :param argv: arguments without the program name; ``sys.argv[1:]`` by default.
    :param env: the environment; ``os.environ`` by default.
    :raises TrainerInputError: on unparsable arguments or invalid values.
    """
    namespace = build_parser(env).parse_args(argv)
    return TrainConfig(**vars(namespace))


def check_hyperparameter_arguments(argv: Sequence[str]) -> None:
    """Check options of :data:`HYPERPARAMETERS` alone, with the trainer's parser and checks (the options they
    do not cover get placeholder values that pass).

    :param argv: e.g. ``["--epochs", "10"]``.
    :raises TrainerInputError: as :func:`parse_config` would, about these options.
    """
    placeholders = ["--data-uri", "-", "--target", "-", "--problem-type", ProblemType.REGRESSION]
    parse_config([*placeholders, "--numeric-features", "placeholder", *argv], env={})
