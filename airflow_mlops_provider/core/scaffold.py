"""Scaffold a continuous-training pipeline for a dataset: what ``airflow-mlops new pipeline`` writes.

From the data and a few choices (the target, the problem type, a time column) it plans a pipeline
(:func:`plan_pipeline`: checks the columns, picks numeric and categorical features by dtype, the split
policy and the promotion metric), renders its DAG file (:func:`render_dag`: a continuous-training DAG and
a drift-monitor DAG, formatted as ``ruff format`` formats them) and profiles the gate's Great Expectations
suite (:func:`gate_suite`). No Airflow here: the command line writes the files.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Final

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from airflow_mlops_provider.contracts import PROBLEM_TYPES, ProblemType, Split
from airflow_mlops_provider.core.io.splits import SplitPolicy

#: Fewer rows than this cannot be split into train, validation and holdout usefully.
MIN_ROWS: Final = 20
#: A binary target needs at least this many rows of each class, so that every split has both.
MIN_PER_CLASS: Final = 5
#: The longest name: it prefixes DAG ids and is a DAG tag.
MAX_NAME_LENGTH: Final = 64
#: The line length of the generated file (the project's ``ruff`` setting).
LINE_LENGTH: Final = 120
#: The metric the promotion gate uses by default, and the ones the trigger form offers.
METRICS: Final = {
    ProblemType.BINARY: ("roc_auc", "accuracy", "log_loss"),
    ProblemType.REGRESSION: ("rmse", "mae", "r2"),
}


class ScaffoldError(ValueError):
    """The inputs cannot make a pipeline: an invalid name, unreadable data, or unusable columns."""


@dataclass(frozen=True)
class Exclusion:
    """A column left out of the features, and why.

    :param column: its name.
    :param reason: why, in a few words.
    """

    column: str
    reason: str


@dataclass(frozen=True)
class PipelinePlan:
    """What the generated pipeline trains on and how.

    :param name: the model's name: the registered model, the DAG ids' prefix, the files' names.
    :param data_uri: the data, as the DAG reads it (an absolute path or a URI).
    :param target: the label column.
    :param problem_type: ``binary`` or ``regression``.
    :param time_column: the event-time column, if any: a temporal split and a windowed drift check.
    :param numeric_features: numeric feature columns.
    :param categorical_features: categorical feature columns.
    :param excluded: the other columns, with the reason they are not features.
    :param rows: the data's row count.
    :param min_metric: the bar a first model must meet on the holdout rows (at most, for an error metric).
    :param batch_size: the default mini-batch size, smaller for small data.
    """

    name: str
    data_uri: str
    target: str
    problem_type: str
    time_column: str | None
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    excluded: tuple[Exclusion, ...] = ()
    rows: int = 0
    min_metric: float = 0.7
    batch_size: int = 256

    @property
    def metric(self) -> str:
        """The promotion metric: ``roc_auc`` for binary, ``rmse`` for regression."""
        return METRICS[self.problem_type][0]

    @property
    def split_policy(self) -> SplitPolicy:
        """The split the DAG's trainer applies (:attr:`split_expression` builds the same)."""
        if self.time_column is not None:
            return SplitPolicy.temporal_by(self.time_column, validation=0.15, holdout=0.15)
        return SplitPolicy.random_by(seed=0, stratify=self.problem_type == ProblemType.BINARY)

    @property
    def split_expression(self) -> str:
        """The ``SplitPolicy`` expression of the DAG: temporal with a time column, else random (stratified
        for a binary target)."""
        if self.time_column is not None:
            return "SplitPolicy.temporal_by(TIME_COLUMN, validation=0.15, holdout=0.15)"
        stratify = ", stratify=True" if self.problem_type == ProblemType.BINARY else ""
        return f"SplitPolicy.random_by(seed=0{stratify})"


@dataclass(frozen=True)
class PipelineFiles:
    """The files of a pipeline in a DAGs folder.

    :param dag: the DAG file, ``<dags>/<name>_ct.py``.
    :param suite: the gate's suite, ``<dags>/expectations/<name>.json``.
    """

    dag: Path
    suite: Path

    @property
    def all(self) -> tuple[Path, ...]:
        """Every file."""
        return self.dag, self.suite


def check_name(name: str) -> str:
    """``name`` if it can name a pipeline: an ASCII Python identifier of at most :data:`MAX_NAME_LENGTH`
    characters.

    :param name: the pipeline's name.
    :raises ScaffoldError: it cannot.
    """
    if not (name.isascii() and name.isidentifier()):
        raise ScaffoldError(
            f"the name {name!r} is not an identifier: use letters, digits and underscores, not starting with a digit"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(f"the name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    return name


def pipeline_files(dags_folder: Path, name: str) -> PipelineFiles:
    """Where the pipeline ``name`` goes in ``dags_folder``.

    :param dags_folder: the DAGs folder.
    :param name: a checked name (:func:`check_name`).
    """
    return PipelineFiles(dag=dags_folder / f"{name}_ct.py", suite=dags_folder / "expectations" / f"{name}.json")


def data_uri_of(source: str) -> str:
    """The URI the DAG reads ``source`` at: a URI as given, a local path made absolute.

    :param source: a local path, ``file://`` or ``s3://`` URI.
    """
    return source if "://" in source else str(Path(source).expanduser().resolve())


def read_data(uri: str) -> pd.DataFrame:
    """Read one parquet or CSV file.

    :param uri: a local path, ``file://`` or ``s3://`` URI.
    :raises ScaffoldError: nothing there, a prefix, an unsupported format, or unreadable content.
    """
    from airflow_mlops_provider.core.io.datasets import read_dataset

    if uri.endswith("/"):
        raise ScaffoldError(f"--from must be one parquet or CSV file, not a prefix: {uri}")
    try:
        return read_dataset(uri)
    except FileNotFoundError:
        raise ScaffoldError(f"no data at {uri}") from None
    except ValueError as err:
        raise ScaffoldError(f"cannot read {uri}: {err}") from None
    except Exception as err:  # S3 and OS errors: the message says what went wrong
        raise ScaffoldError(f"cannot read {uri}: {type(err).__name__}: {err}") from None


def plan_pipeline(
    df: pd.DataFrame,
    name: str,
    data_uri: str,
    target: str,
    problem_type: str | None = None,
    time_column: str | None = None,
) -> PipelinePlan:
    """Check the data and choose the features, the problem type and the promotion bar.

    Features are the columns other than the target and the time column: numeric ones (without missing
    values) are numeric features; strings, categories and booleans are categorical features. Left out,
    with the reason: times, constant or empty columns, identifiers, numeric columns with missing values
    (the trainer needs them complete), strings with a value in almost every row, names with a comma.

    :param df: the data.
    :param name: the pipeline's name (checked).
    :param data_uri: where the DAG reads the data.
    :param target: the label column.
    :param problem_type: ``binary`` or ``regression``; ``None`` infers it: binary for a 0/1 target,
        regression for another numeric one.
    :param time_column: the event-time column, if any.
    :raises ScaffoldError: what is wrong, in one line.
    """
    check_name(name)
    columns = [str(c) for c in df.columns]
    df = df.set_axis(columns, axis=1)
    listing = ", ".join(columns)
    if target not in columns:
        raise ScaffoldError(f"no target column {target!r} in {data_uri}; its columns: {listing}")
    if Split.COLUMN in (target, time_column):
        raise ScaffoldError(f"the split policy writes a column {Split.COLUMN!r}: rename your {Split.COLUMN!r} column")
    if time_column is not None:
        if time_column not in columns:
            raise ScaffoldError(f"no time column {time_column!r} in {data_uri}; its columns: {listing}")
        if time_column == target:
            raise ScaffoldError(f"the time column cannot be the target {target!r}")
        _check_time(df[time_column], time_column)
    if len(df) < MIN_ROWS:
        raise ScaffoldError(
            f"{data_uri} has {len(df)} rows; a pipeline needs at least {MIN_ROWS} to split into train, "
            "validation and holdout"
        )
    problem_type = _check_target(df[target], target, problem_type)
    numeric, categorical, excluded = _features(df, target, time_column)
    if not (numeric or categorical):
        reasons = "; ".join(f"{e.column}: {e.reason}" for e in excluded) or "no other columns"
        raise ScaffoldError(f"{data_uri} has no usable feature columns ({reasons})")
    plan = PipelinePlan(
        name=name,
        data_uri=data_uri,
        target=target,
        problem_type=problem_type,
        time_column=time_column,
        numeric_features=tuple(numeric),
        categorical_features=tuple(categorical),
        excluded=tuple(excluded),
        rows=len(df),
        min_metric=_min_metric(df[target], problem_type),
        batch_size=64 if len(df) < 5_000 else 256,
    )
    _try_split(df, plan)
    return plan


def _try_split(df: pd.DataFrame, plan: PipelinePlan) -> None:
    """Split ``df`` as the trainer will, and refuse a split that the trainer would (an empty part, or a
    binary target with one class in a part, as a temporal split of a drifting label can give)."""
    for part, rows in plan.split_policy.partition(df, plan.target).items():
        if rows.empty:
            raise ScaffoldError(f"the {part!r} split of {plan.data_uri} is empty: the data needs more rows")
        if plan.problem_type == ProblemType.BINARY and rows[plan.target].nunique() < 2:
            raise ScaffoldError(
                f"the {part!r} split of {plan.data_uri} ({plan.split_expression}) holds only one class of "
                f"{plan.target!r}: the trainer needs both in every split; "
                + ("drop --time-column for a stratified random split, or " if plan.time_column else "")
                + "add rows of the rare class"
            )


def _check_time(series: pd.Series, column: str) -> None:
    """A datetime column, or strings that parse as times, without missing values."""
    if not (ptypes.is_datetime64_any_dtype(series.dtype) or _is_text(series)):
        raise ScaffoldError(
            f"time column {column!r} is {series.dtype}, not a time: use a datetime column or ISO 8601 strings"
        )
    if series.isna().any():
        raise ScaffoldError(f"time column {column!r} has {int(series.isna().sum())} missing values")
    if _is_text(series):
        parsed = pd.to_datetime(series, utc=True, format="ISO8601", errors="coerce")
        if parsed.isna().any():
            example = series[parsed.isna()].iloc[0]
            raise ScaffoldError(
                f"time column {column!r} is not a time: {example!r} does not parse as an ISO 8601 date or time"
            )


def _check_target(series: pd.Series, target: str, problem_type: str | None) -> str:
    """The problem type ``series`` can be the target of (``problem_type``, or inferred)."""
    if problem_type is not None and problem_type not in PROBLEM_TYPES:
        raise ScaffoldError(f"problem type must be one of {PROBLEM_TYPES}, not {problem_type!r}")
    if series.isna().any():
        raise ScaffoldError(f"target {target!r} has {int(series.isna().sum())} missing values: drop or fill those rows")
    numeric = ptypes.is_numeric_dtype(series.dtype)
    values = sorted(pd.unique(series.astype("float64"))) if numeric else []
    binary_values = numeric and set(values) <= {0.0, 1.0}
    if problem_type is None:
        if not numeric:
            raise ScaffoldError(
                f"target {target!r} is not numeric ({series.dtype}, e.g. {_examples(series)}): map it to 0/1 "
                "for a binary model, or to numbers for a regression"
            )
        problem_type = ProblemType.BINARY if binary_values else ProblemType.REGRESSION
    if problem_type == ProblemType.BINARY:
        if not binary_values:
            shown = _examples(series) if not numeric else ", ".join(f"{v:g}" for v in values[:10])
            raise ScaffoldError(f"binary target {target!r} must hold only 0 and 1, found {shown}: map it to 0/1")
        counts = series.astype("float64").value_counts()
        if len(counts) < 2:
            raise ScaffoldError(f"binary target {target!r} has one class ({values[0]:g}): a model needs both 0 and 1")
        if counts.min() < MIN_PER_CLASS:
            raise ScaffoldError(
                f"binary target {target!r} has {counts.min()} rows of class {counts.idxmin():g}: at least "
                f"{MIN_PER_CLASS} of each class are needed to split the rows"
            )
    else:
        if not numeric or ptypes.is_bool_dtype(series.dtype):
            raise ScaffoldError(
                f"regression target {target!r} must be numeric, got {series.dtype} (e.g. {_examples(series)})"
            )
        if not all(math.isfinite(v) for v in values):
            raise ScaffoldError(f"regression target {target!r} has infinite values")
        if len(values) < 2:
            raise ScaffoldError(f"regression target {target!r} is constant ({values[0]:g})")
    return problem_type


def _features(df: pd.DataFrame, target: str, time_column: str | None) -> tuple[list[str], list[str], list[Exclusion]]:
    """Numeric features, categorical features, and the other columns with the reason they are left out."""
    numeric: list[str] = []
    categorical: list[str] = []
    excluded: list[Exclusion] = []
    for column in df.columns:
        if column in (target, time_column):
            continue
        series = df[column]
        reason = _exclusion(column, series)
        if reason is not None:
            excluded.append(Exclusion(column, reason))
        elif _is_number(series):
            numeric.append(column)
        else:
            categorical.append(column)
    return numeric, categorical, excluded


def _exclusion(column: str, series: pd.Series) -> str | None:
    """Why ``column`` is not a feature, or ``None`` when it is one."""
    distinct = series.nunique(dropna=True)
    if column == Split.COLUMN:
        return "the split column, which the split policy writes"
    if "," in column:
        return "a comma in its name (the trainer takes comma-separated feature names)"
    if distinct == 0:
        return "empty"
    if distinct == 1:
        return "constant"
    if ptypes.is_datetime64_any_dtype(series.dtype) or ptypes.is_timedelta64_dtype(series.dtype):
        return "a time, not a feature"
    if _looks_like_id(column):
        return "an identifier"
    if _is_number(series):
        if not np.isfinite(series.to_numpy(dtype="float64", na_value=np.nan)).all():
            return "missing or infinite values (the trainer needs complete numeric features: fill them first)"
        return None
    if ptypes.is_bool_dtype(series.dtype) or isinstance(series.dtype, pd.CategoricalDtype) or _is_text(series):
        if distinct > max(20, len(series) // 2):
            return f"{distinct} distinct values in {len(series)} rows (an identifier or free text?)"
        return None
    return f"unsupported type {series.dtype}"


def _is_number(series: pd.Series) -> bool:
    return ptypes.is_numeric_dtype(series.dtype) and not ptypes.is_bool_dtype(series.dtype)


def _is_text(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.StringDtype) or ptypes.infer_dtype(series, skipna=True) == "string"


def _looks_like_id(column: str) -> bool:
    lowered = column.lower()
    return lowered == "id" or lowered.endswith(("_id", " id", "-id", "uuid"))


def _examples(series: pd.Series, count: int = 3) -> str:
    return ", ".join(repr(v) for v in pd.unique(series.dropna())[:count])


def _min_metric(series: pd.Series, problem_type: str) -> float:
    """The promotion bar of a first model: a ROC AUC of 0.7; an RMSE no worse than predicting the mean (the
    target's standard deviation, rounded up to 3 significant digits)."""
    if problem_type == ProblemType.BINARY:
        return 0.7
    std = float(series.astype("float64").std(ddof=0))
    step = 10.0 ** (math.floor(math.log10(std)) - 2)
    return round(math.ceil(std / step) * step, max(0, 2 - math.floor(math.log10(std))))


def gate_suite(df: pd.DataFrame, plan: PipelinePlan) -> dict[str, Any]:
    """The gate's suite: ``airflow-mlops suite init``'s profile of the data, without an upper bound on the
    row count (the data of a continuous-training pipeline grows).

    :param df: the data.
    :param plan: the pipeline (its name names the suite; identifiers get no value range).
    :raises ScaffoldError: the data cannot be profiled.
    """
    from airflow_mlops_provider.core.validation.profiler import ProfileOptions, profile_suite

    ids = tuple(e.column for e in plan.excluded if e.reason == "an identifier" and _is_number(df[e.column]))
    try:
        suite = profile_suite(df, name=plan.name, options=ProfileOptions(no_range=ids), source=plan.data_uri)
    except ValueError as err:
        raise ScaffoldError(f"cannot profile {plan.data_uri}: {err}") from None
    for expectation in suite["expectations"]:
        if expectation["type"] == "expect_table_row_count_to_be_between":
            expectation["kwargs"]["max_value"] = None
    return suite


# --- The DAG file -----------------------------------------------------------------------------------


def render_dag(plan: PipelinePlan) -> str:
    """The pipeline's DAG file: a continuous-training DAG and a drift-monitor DAG, ``ruff format`` clean.

    :param plan: the pipeline.
    """
    timed = plan.time_column is not None
    metrics = METRICS[plan.problem_type]
    values = {
        "imports": _IMPORTS_TIMED if timed else _IMPORTS,
        "name": _assign("MODEL_NAME", plan.name),
        "name_value": plan.name,
        "data_uri": _assign("DATA_URI", plan.data_uri),
        "target": _assign("TARGET", plan.target),
        "time_column": _assign("TIME_COLUMN", plan.time_column) + "\n" if timed else "",
        "problem_type": "BINARY" if plan.problem_type == ProblemType.BINARY else "REGRESSION",
        "numeric": _str_list("NUMERIC_FEATURES", plan.numeric_features),
        "categorical": _str_list("CATEGORICAL_FEATURES", plan.categorical_features),
        "excluded": _excluded_comment(plan.excluded),
        "split": plan.split_expression,
        "split_doc": "by `{TIME_COLUMN}` (the newest rows are held out)" if timed else "at random (seeded)",
        "current_doc": _CURRENT_DOC_TIMED if timed else _CURRENT_DOC,
        "window_constants": _WINDOW_CONSTANTS if timed else "",
        "drift_doc": _DRIFT_DOC_TIMED if timed else _DRIFT_DOC,
        "window_param": _WINDOW_PARAM if timed else "",
        "window_arg": _WINDOW_ARG if timed else "",
        "batch_size": str(plan.batch_size),
        "metric": _quote(plan.metric),
        "metrics": ", ".join(_quote(m) for m in metrics),
        "min_metric": repr(float(plan.min_metric)),
        "min_metric_doc": "at most" if plan.metric in ("rmse", "mae", "log_loss") else "at least",
    }
    return Template(_DAG_TEMPLATE).substitute(values)


def _quote(text: str) -> str:
    """``text`` as a Python string literal, quoted as ``ruff format`` quotes it: in double quotes, unless it
    holds more double quotes than single ones."""
    literal = repr(text)  # backslashes and control characters escaped
    body = literal[1:-1].replace("\\'", "'") if literal[0] == "'" else literal[1:-1]
    if body.count('"') > body.count("'"):
        return "'" + body.replace("'", "\\'") + "'"
    return '"' + body.replace('"', '\\"') + '"'


def _fit(line: str) -> str:
    """``line``, with ``# noqa: E501`` when a long literal makes it too long for ruff's E501."""
    return line + "  # noqa: E501" if _too_long(line) else line


def _too_long(line: str) -> bool:
    """Whether ruff's E501 flags ``line``: wider than :data:`LINE_LENGTH`, unless it is one word, or ends
    with a URL that starts within the limit."""
    width = _width(line)
    chunks = line.split()
    if width <= LINE_LENGTH or len(chunks) < 2:
        return False
    return not ("://" in chunks[-1] and width - _width(chunks[-1]) <= LINE_LENGTH)


def _width(text: str) -> int:
    """The display width of ``text``: wide East Asian characters count twice."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _assign(name: str, value: str | None) -> str:
    return _fit(f"{name} = {_quote(value or '')}")


def _str_list(name: str, items: tuple[str, ...]) -> str:
    if not items:
        return f"{name}: list[str] = []"
    lines = "\n".join(_fit(f"    {_quote(item)},") for item in items)
    return f"{name} = [\n{lines}\n]"


def _excluded_comment(excluded: tuple[Exclusion, ...]) -> str:
    if not excluded:
        return ""
    lines = "\n".join(_fit(f"#   {e.column!r}: {e.reason}") for e in excluded)
    return f"# Left out of the features (add them back once they fit):\n{lines}\n"


_IMPORTS = """\
from airflow_mlops_provider.config import DataFolder, data_path
from airflow_mlops_provider.contracts import CHAMPION, ProblemType, Tag, champion_asset, drift_asset
from airflow_mlops_provider.core.drift.spec import EpisodePolicy
from airflow_mlops_provider.core.io.splits import SplitPolicy
from airflow_mlops_provider.operators.drift import DriftCheckOperator
from airflow_mlops_provider.operators.registry import PromoteModelOperator, RegisterModelOperator
from airflow_mlops_provider.operators.training import GPUTrainingOperator
from airflow_mlops_provider.operators.validation import DataValidationOperator"""

_IMPORTS_TIMED = """\
from airflow_mlops_provider.config import DataFolder, data_path
from airflow_mlops_provider.contracts import CHAMPION, ProblemType, Tag, champion_asset, drift_asset
from airflow_mlops_provider.core.drift.spec import DriftWindow, EpisodePolicy
from airflow_mlops_provider.core.io.splits import SplitPolicy
from airflow_mlops_provider.operators.drift import DriftCheckOperator
from airflow_mlops_provider.operators.registry import PromoteModelOperator, RegisterModelOperator
from airflow_mlops_provider.operators.training import GPUTrainingOperator
from airflow_mlops_provider.operators.validation import DataValidationOperator
from airflow_mlops_provider.run_windows import days_before_run"""

_CURRENT_DOC = (
    "#: The fresh data the drift monitor compares with the champion's training rows: a file, or a /-terminated\n"
    "#: prefix of files. By default the training data itself: point it at where new data lands."
)
_CURRENT_DOC_TIMED = (
    "#: The fresh data the drift monitor checks the last `window_days` days of: a file, or a /-terminated\n"
    "#: prefix of files. By default the training data itself: point it at where new data lands."
)

_WINDOW_CONSTANTS = """\
#: The drift monitor's window: the `window_days` days before the run.
WINDOW_START, WINDOW_END = days_before_run("params.window_days")
"""

_DRIFT_DOC = """\
Daily, **check_drift** compares `current_uri` with the training rows of the `{CHAMPION}` version of
`{MODEL_NAME}` (its `{Tag.DATASET_URI}` tag), on the model's features, with Evidently's tests."""

_DRIFT_DOC_TIMED = """\
Daily, **check_drift** compares the last `window_days` days of `current_uri` (by `{TIME_COLUMN}`) with the
training rows of the `{CHAMPION}` version of `{MODEL_NAME}` (its `{Tag.DATASET_URI}` tag), on the model's
features, with Evidently's tests."""

_WINDOW_PARAM = """\
        "window_days": Param(7, type="integer", minimum=1, description="Days of data before the run to check"),
"""

_WINDOW_ARG = """\
        window=DriftWindow(TIME_COLUMN, start=WINDOW_START, end=WINDOW_END),
"""

_DAG_TEMPLATE = '''\
"""Continuous training of a model, scaffolded by `airflow-mlops new pipeline`: it is yours to edit.

Two DAGs:
- ${name_value}_continuous_training
  GX gate -> train -> register -> promote; weekly, and whenever the drift monitor finds drift.
- ${name_value}_drift_monitor
  Daily, compares fresh data with the champion's training rows.

Review first: the features below (chosen from the data's types), the gate's suite (profiled from the data:
every bound), CURRENT_URI (the fresh data to watch), the promotion bar (`min_metric`) and the schedules.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param

$imports

$name
#: The data to train on: a parquet or CSV file, local or s3:// (a run can pass another as `data_uri`).
$data_uri
$target
${time_column}PROBLEM_TYPE = ProblemType.$problem_type
$numeric
$categorical
$excluded#: How the trainer splits the rows into train / validation / holdout; promotion scores the same holdout rows.
SPLIT = $split
#: The gate's Great Expectations suite, relative to this file.
SUITE = f"expectations/{MODEL_NAME}.json"
$current_doc
CURRENT_URI = DATA_URI

CHAMPION_MODEL = champion_asset(MODEL_NAME)
DRIFT = drift_asset(MODEL_NAME)
#: The drift monitor's episode state: one retraining per drift episode, at most every 3 days.
DRIFT_STATE_URI = data_path(DataFolder.DRIFT_STATE, f"{MODEL_NAME}_monitor.json")
$window_constants
TRAINING_DOC = f"""
### Continuous training of the {MODEL_NAME} model

1. **validate_data** checks the data (`data_uri`) against `{SUITE}` (Great Expectations). A failure stops
   the run here, without retry, and lists what failed; the task links to its Data Docs.
2. **train_model** trains the bundled PyTorch model to predict `{TARGET}` ({PROBLEM_TYPE}) in a GPU pod or
   a local process (`[mlops] training_backend`), tracked in MLflow. Its rows are split into train,
   validation and holdout $split_doc.
3. **register_model** registers the run's model, with lineage tags (data URI and digest, split policy).
4. **promote_model** scores the new version and the `{CHAMPION}` on the same holdout rows, and makes it
   champion only when its `metric` reaches `min_metric` and beats the champion's by `min_improvement`;
   otherwise the version is tagged rejected, with the reason.

Runs weekly, and whenever `{MODEL_NAME}_drift_monitor` updates the `{DRIFT.name}` asset.
"""

DRIFT_DOC = f"""
### Drift monitor of the {MODEL_NAME} model

$drift_doc

The report is linked from the task. When the share of drifted columns reaches `drift_share`, the
`{DRIFT.name}` asset gets an event and `{MODEL_NAME}_continuous_training` retrains: once per drift
episode, at most every 3 days (state in `{DRIFT_STATE_URI}`). Skipped while there is no champion yet, or
no data to check.
"""

with DAG(
    dag_id=f"{MODEL_NAME}_continuous_training",
    schedule=AssetOrTimeSchedule(
        # Sundays at 03:00 UTC; run_immediately=0: unpausing does not start a run for the Sunday just past.
        timetable=CronTriggerTimetable("0 3 * * 0", timezone="UTC", run_immediately=timedelta(0)),
        assets=DRIFT,
    ),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "continuous-training", MODEL_NAME],
    doc_md=TRAINING_DOC,
    params={
        "data_uri": Param(DATA_URI, type="string", description="The data to train on: parquet or CSV, local or s3://"),
        "epochs": Param(20, type="integer", minimum=1, maximum=500, description="Training epochs"),
        "learning_rate": Param(0.003, type="number", exclusiveMinimum=0, description="Adam learning rate"),
        "batch_size": Param($batch_size, type="integer", minimum=8, description="Mini-batch size"),
        "seed": Param(0, type="integer", description="Seed of the model's initialization and shuffling"),
        "metric": Param($metric, type="string", enum=[$metrics],
                        description="Holdout metric of the promotion gate"),
        "min_metric": Param($min_metric, type="number", description="Bar a first model must meet ($min_metric_doc)"),
        "min_improvement": Param(0.0, type="number", minimum=0, description="Required gain over the champion"),
    },
):  # fmt: skip
    validate = DataValidationOperator(task_id="validate_data", dataset="{{ params.data_uri }}", suite_path=SUITE)
    train = GPUTrainingOperator(
        task_id="train_model",
        dataset_uri="{{ params.data_uri }}",
        target=TARGET,
        numeric_features=NUMERIC_FEATURES,
        categorical_features=CATEGORICAL_FEATURES,
        problem_type=PROBLEM_TYPE,
        split=SPLIT,
        experiment_name=MODEL_NAME,
        hyperparameters={
            "epochs": "{{ params.epochs }}",
            "learning_rate": "{{ params.learning_rate }}",
            "batch_size": "{{ params.batch_size }}",
            "seed": "{{ params.seed }}",
        },
        gpus=1,  # the pod's GPU limit with the kubernetes backend; 0 for a CPU pod
    )
    register = RegisterModelOperator(
        task_id="register_model", model_name=MODEL_NAME, mlflow_run_id=train.output["mlflow_run_id"]
    )
    PromoteModelOperator(
        task_id="promote_model",
        model_name=MODEL_NAME,
        version=register.output["version"],
        holdout_uri="{{ params.data_uri }}",  # the trained-on data: the run's split policy finds its holdout rows
        target=TARGET,
        problem_type=PROBLEM_TYPE,
        metric="{{ params.metric }}",
        min_value="{{ params.min_metric }}",
        min_improvement="{{ params.min_improvement }}",
        champion_asset=CHAMPION_MODEL,  # an event only when a new champion is made
    )
    validate >> train

with DAG(
    dag_id=f"{MODEL_NAME}_drift_monitor",
    schedule=CronTriggerTimetable("0 6 * * *", timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "drift", MODEL_NAME],
    doc_md=DRIFT_DOC,
    params={
        "current_uri": Param(CURRENT_URI, type="string", description="The fresh data: a file or a /-terminated prefix"),
${window_param}        "drift_share": Param(0.5, type="number", exclusiveMinimum=0, maximum=1,
                             description="Share of drifted columns at which the dataset drifts"),
    },
):  # fmt: skip
    DriftCheckOperator(
        task_id="check_drift",
        model_name=MODEL_NAME,
        current_uri="{{ params.current_uri }}",
${window_arg}        drift_config={"drift_share": "{{ params.drift_share }}"},
        drift_asset=DRIFT,
        state_uri=DRIFT_STATE_URI,
        # A retrained champion's training rows still mostly predate a shift, so the next check drifts again:
        # at most one drift-triggered retraining every 3 days.
        episode_policy=EpisodePolicy(cooldown_seconds=3 * 86_400),
    )
'''


def next_steps(plan: PipelinePlan, files: PipelineFiles, expectations: int) -> str:
    """What was written and what to edit next, as the command prints it.

    :param plan: the pipeline.
    :param files: its files.
    :param expectations: the suite's expectation count.
    """
    split = "temporal" if plan.time_column else "random"
    lines = [
        f"Wrote {files.dag}: DAGs {plan.name}_continuous_training and {plan.name}_drift_monitor",
        f"Wrote {files.suite}: {expectations} expectations profiled from the data",
        f"Model: {plan.problem_type} on {plan.target!r}, {len(plan.numeric_features)} numeric and "
        f"{len(plan.categorical_features)} categorical features, {split} split, promoted on {plan.metric}.",
    ]
    if plan.excluded:
        lines.append("Left out: " + "; ".join(f"{e.column!r} ({e.reason})" for e in plan.excluded))
    lines += [
        "Next:",
        f"  1. Review the features in {files.dag.name} and every bound in {files.suite.name}.",
        "  2. Set CURRENT_URI to where fresh data lands: the drift monitor compares it with the champion's data.",
        "  3. Retrain on new data in a new file (pass it as data_uri): the champion's training file is read back",
        "     by the drift monitor and must not change.",
        "  4. Create the connections mlflow_default (and mlops_s3_default for s3://), commit both files, and",
        f"     trigger {plan.name}_continuous_training.",
    ]
    return "\n".join(lines)
