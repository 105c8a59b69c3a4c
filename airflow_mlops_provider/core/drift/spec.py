"""What a drift check is given and what it gives back: the spec objects that the operator, the sensor, the
trigger and the check's child process share, its outcome, and the one error that means "nothing to check yet".

Everything here is JSON-serializable (``to_dict`` / ``from_dict``) and cheap to import: DAG files build
these objects at parse time, and the triggerer keeps them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlops_provider.contracts import CHAMPION, DriftSummary, Split
from airflow_mlops_provider.core.drift.methods import NUMERIC, STAT_TESTS, Kind

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from airflow_mlops_provider.core.io.storage import ObjectStore, ObjectVersion

_NUMBER_FIELDS = ("threshold", "num_threshold", "cat_threshold", "drift_share")
#: The fewest rows (and, per column, values left after dropping NaN/inf) a drift check compares by default.
DEFAULT_MIN_ROWS = 30


class NothingToCheckError(Exception):
    """There is nothing to compare yet: no version has the model's alias, no current data, or no row in the
    window. Not a failure: an operator skips, a sensor or a trigger waits."""


class NoCurrentDataError(NothingToCheckError):
    """The current data does not exist (yet): a missing file, or a prefix without data files."""


class NotEnoughDataError(NothingToCheckError):
    """The current window has fewer rows than ``DriftConfig.min_rows``: no verdict (and no event) until more
    data arrives. (Too small a reference is a ``ValueError``: waiting does not fix it.)"""


class WindowAlreadyJudgedError(NothingToCheckError):
    """An ``event_only`` check of a window already judged against the same reference: nothing new."""


@dataclass
class DriftWindow:
    """Which rows of the current data a check reads: ``[start, end)`` on ``time_column``, and, with
    ``lookback_seconds``, only those newer than the newest row minus that.

    ``start`` and ``end`` are template fields: an operator renders them (e.g. ``{{ data_interval_start }}``).

    :param time_column: the event-time column; required by the bounds; ``None`` reads every row.
    :param start: inclusive start (ISO 8601; a naive time is UTC); ``None`` or ``""``: unbounded.
    :param end: exclusive end, likewise.
    :param lookback_seconds: keep rows newer than the newest one minus this (a moving window for watchers);
        a positive finite number of seconds.
    :raises ValueError: ``lookback_seconds`` is not a positive finite number.
    """

    template_fields: ClassVar[tuple[str, ...]] = ("start", "end")

    time_column: str | None = None
    start: str | None = None
    end: str | None = None
    lookback_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.lookback_seconds is not None:
            _require(_number(self.lookback_seconds) > 0, f"lookback_seconds must be a positive finite number of "
                     f"seconds, got {self.lookback_seconds!r}")  # fmt: skip

    @property
    def lookback(self) -> timedelta | None:
        """``lookback_seconds`` as a duration."""
        return None if self.lookback_seconds is None else timedelta(seconds=float(self.lookback_seconds))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serializable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftWindow:
        """Rebuild a window from :meth:`to_dict` output.

        :param data: field values.
        """
        return cls(**data)


@dataclass(frozen=True)
class DriftConfig:
    """Which test and threshold each column gets, named as in Evidently's ``DataDriftPreset``.

    A per-column setting beats a per-kind one, which beats the all-columns one; a missing method means
    Evidently's default choice, a missing threshold the chosen test's default.

    :param method: test for every column: ``ks``, ``wasserstein``, ``psi``, ``jensenshannon``, ``chisquare``, ``z``.
    :param threshold: threshold for every column.
    :param num_method: test for numeric columns.
    :param cat_method: test for categorical columns.
    :param num_threshold: threshold for numeric columns.
    :param cat_threshold: threshold for categorical columns.
    :param per_column_method: test by column name.
    :param per_column_threshold: threshold by column name.
    :param drift_share: the dataset drifts when at least this share of columns drift, in ``(0, 1]``.
    :param min_rows: the fewest rows the reference and the current frame, and each compared column's values
        after dropping NaN/inf, may have (at least 2; default :data:`DEFAULT_MIN_ROWS`): a smaller reference
        or column is an error, a smaller current window is :class:`NotEnoughDataError` (no verdict yet).
    :raises ValueError: an unknown method, or a threshold, share or row minimum out of its range (a
        threshold is checked against its method's range when the method is set explicitly, else when the
        check picks one).
    """

    method: str | None = None
    threshold: float | None = None
    num_method: str | None = None
    cat_method: str | None = None
    num_threshold: float | None = None
    cat_threshold: float | None = None
    per_column_method: Mapping[str, str] = field(default_factory=dict)
    per_column_threshold: Mapping[str, float] = field(default_factory=dict)
    drift_share: float = 0.5
    min_rows: int = DEFAULT_MIN_ROWS

    def __post_init__(self) -> None:
        methods = [self.method, self.num_method, self.cat_method, *self.per_column_method.values()]
        unknown = sorted({str(m) for m in methods if m is not None and m not in STAT_TESTS})
        if unknown:
            raise ValueError(f"unknown drift method(s) {unknown[:10]}; choose from {sorted(STAT_TESTS)}")
        _require(0 < _number(self.drift_share) <= 1, f"drift_share must be in (0, 1], got {self.drift_share!r}")
        _require(_integer(self.min_rows) >= 2, f"min_rows must be an integer of at least 2, got {self.min_rows!r}")
        explicit = [
            (self.threshold, self.method, ""),
            (self.num_threshold, self.num_method or self.method, " (num_threshold)"),
            (self.cat_threshold, self.cat_method or self.method, " (cat_threshold)"),
            *((t, self.per_column_method.get(c), f" (column {c!r})") for c, t in self.per_column_threshold.items()),
        ]
        for threshold, method, where in explicit:
            if threshold is None:
                continue
            value = _number(threshold)
            _require(0 < value < math.inf, f"drift threshold {threshold!r}{where} must be a positive finite number")
            if method is not None:
                STAT_TESTS[method].check_threshold(value, where)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DriftConfig:
        """Build a config from :meth:`to_dict` output or any subset of the fields, e.g. rendered templates.

        Numbers may be given as strings (``"0.05"``); empty strings mean ``None``.

        :param data: field values; ``None`` for all defaults.
        """
        fields: dict[str, Any] = {key: None if value == "" else value for key, value in (data or {}).items()}
        for key in _NUMBER_FIELDS:
            if fields.get(key) is not None:
                fields[key] = _parse_number(fields[key], key)
        if fields.get("min_rows") is not None:
            fields["min_rows"] = _parse_number(fields["min_rows"], "min_rows", int)
        if fields.get("per_column_threshold"):
            fields["per_column_threshold"] = {
                c: _parse_number(t, f"per_column_threshold[{c!r}]") for c, t in fields["per_column_threshold"].items()
            }
        return cls(**fields)

    @classmethod
    def of(cls, value: DriftConfig | Mapping[str, Any] | None) -> DriftConfig:
        """``value`` itself, or the config built from its fields by :meth:`from_dict`.

        :param value: a config, its fields (e.g. ``{"drift_share": "{{ params.drift_share }}"}`` once
            rendered), or ``None`` for all defaults.
        """
        return value if isinstance(value, DriftConfig) else cls.from_dict(value)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serializable dict."""
        return asdict(self) | {
            "per_column_method": dict(self.per_column_method),
            "per_column_threshold": dict(self.per_column_threshold),
        }

    def method_for(self, column: str, kind: Kind) -> str | None:
        """The explicitly configured test of ``column``, or ``None`` for Evidently's default.

        :param column: the column name.
        :param kind: ``num`` or ``cat``.
        """
        by_kind = self.num_method if kind == NUMERIC else self.cat_method
        return self.per_column_method.get(column, by_kind if by_kind is not None else self.method)

    def threshold_for(self, column: str, kind: Kind) -> float | None:
        """The explicitly configured threshold of ``column``, or ``None`` for the test's default.

        :param column: the column name.
        :param kind: ``num`` or ``cat``.
        """
        by_kind = self.num_threshold if kind == NUMERIC else self.cat_threshold
        return self.per_column_threshold.get(column, by_kind if by_kind is not None else self.threshold)


@dataclass(frozen=True)
class EpisodePolicy:
    """How eagerly drift raises events.

    :param debounce: drifted windows in a row that start an episode.
    :param clear_after: clean windows in a row that end an episode.
    :param cooldown_seconds: minimum time between two events.
    :param max_events: at most this many events per ``period_seconds``; ``None`` for no cap.
    :param period_seconds: the period of ``max_events``.
    """

    debounce: int = 1
    clear_after: int = 1
    cooldown_seconds: float = 0.0
    max_events: int | None = None
    period_seconds: float = 86_400.0

    def __post_init__(self) -> None:
        for name in ("debounce", "clear_after"):
            value = getattr(self, name)
            _require(_integer(value) >= 1, f"{name} must be an integer of at least 1, got {value!r}")
        _require(0 <= _number(self.cooldown_seconds) < math.inf,
                 f"cooldown_seconds must be a finite number >= 0, got {self.cooldown_seconds!r}")  # fmt: skip
        _require(0 < _number(self.period_seconds) < math.inf,
                 f"period_seconds must be a positive finite number, got {self.period_seconds!r}")  # fmt: skip
        if self.max_events is not None:
            _require(_integer(self.max_events) >= 1, f"max_events must be an integer of at least 1 (or None), "
                     f"got {self.max_events!r}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serializable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpisodePolicy:
        """Rebuild a policy from :meth:`to_dict` output.

        :param data: field values.
        """
        return cls(**data)


@dataclass
class DriftCheckSpec:
    """One drift check: the current data, the reference, the window, the settings, and where the episode
    state and the report live.

    A template field of a sensor: its own template fields (and the window's) are rendered.

    :param current_uri: the current data (features, or batch-inference predictions): a file, or a
        ``/``-terminated prefix of parquet/CSV files, local or ``s3://``.
    :param model_name: the registered model whose ``model_alias`` version's training set is the reference.
    :param model_alias: the alias to follow; a new version is a new reference, and starts a new episode.
    :param reference_uri: a fixed reference dataset instead (``model_name`` is then only recorded).
    :param split_value: the reference rows to keep: those its split (the training run's policy, else its split
        column) assigns this value; ``None`` keeps all.
    :param window: the rows of the current data to check.
    :param columns: the columns to compare; by default the model's features, else the columns both share
        minus the target, split, time, ids and ``exclude_columns``.
    :param exclude_columns: columns never compared.
    :param drift_config: tests, thresholds and drift share (Evidently's defaults).
    :param state_uri: the episode state's JSON document, local or ``s3://``: with it, one event per drift
        episode under ``episode_policy``; without, every drifted check fires.
    :param episode_policy: debounce, cooldown and cap of events.
    :param report_prefix: where each check's JSON summary goes, with Evidently's HTML and JSON report when
        the dataset drifted (or ``always_report``); ``None``: nowhere.
    :param report_per_window: store each check under ``<report_prefix>/<window id>/``, so that checks
        sharing a prefix (a watcher's) keep every report; else right under ``report_prefix``.
    :param always_report: render Evidently's report even without drift.
    :param event_only: a watcher's check (``DriftTrigger``, ``DriftSensor`` set it): a window already judged
        against the same reference is not compared again, and the summary and report are stored only for
        a window that fires.
    :param predictions_uri: the model's batch-inference predictions (a file or ``/``-terminated prefix):
        their ``prediction`` column in the window (the reference version's rows) is also compared with the
        version's predictions on its holdout rows; its verdict is the summary's ``prediction_drift``, and
        it drifting is drift. Needs ``model_name`` (the version to score the holdout with).
    """

    template_fields: ClassVar[tuple[str, ...]] = (
        "current_uri", "model_name", "reference_uri", "window", "columns", "state_uri", "report_prefix",
        "predictions_uri",
    )  # fmt: skip

    current_uri: str
    model_name: str | None = None
    model_alias: str = CHAMPION
    reference_uri: str | None = None
    split_value: str | None = Split.TRAIN
    window: DriftWindow = field(default_factory=DriftWindow)
    columns: Sequence[str] = ()
    exclude_columns: Sequence[str] = ()
    drift_config: DriftConfig = field(default_factory=DriftConfig)
    state_uri: str | None = None
    episode_policy: EpisodePolicy = field(default_factory=EpisodePolicy)
    report_prefix: str | None = None
    report_per_window: bool = True
    always_report: bool = False
    event_only: bool = False
    predictions_uri: str | None = None

    def __post_init__(self) -> None:
        if not self.current_uri:
            raise ValueError("a drift check needs current_uri")
        if not (self.reference_uri or self.model_name):
            raise ValueError("a drift check needs reference_uri or model_name")
        if self.predictions_uri and (self.reference_uri or not self.model_name):
            raise ValueError("prediction drift (predictions_uri) needs model_name and no reference_uri: the "
                             "reference is the model version's predictions on its holdout rows")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serializable dict (nested specs as dicts)."""
        return asdict(self) | {
            "window": self.window.to_dict(),
            "columns": list(self.columns),
            "exclude_columns": list(self.exclude_columns),
            "drift_config": self.drift_config.to_dict(),
            "episode_policy": self.episode_policy.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftCheckSpec:
        """Rebuild a spec from :meth:`to_dict` output.

        :param data: field values; nested specs as dicts.
        """
        nested = {
            "window": DriftWindow.from_dict(data.get("window") or {}),
            "drift_config": DriftConfig.of(data.get("drift_config")),
            "episode_policy": EpisodePolicy.from_dict(data.get("episode_policy") or {}),
        }
        return cls(**{**data, **nested})

    def inputs_fingerprint(self, store: ObjectStore, mlflow_client: Callable[[], MlflowClient]) -> str:
        """What identifies the check's inputs now, cheaply: the current data's listing (names, sizes,
        etags or modification times) and the reference (its listing, or the version ``model_alias``
        points at). A poller runs the check again only when this changes.

        :param store: the store to list through.
        :param mlflow_client: builds the MLflow client, asked only for ``model_alias``'s version.
        """
        from airflow_mlops_provider.core.models.lineage import alias_version

        if self.reference_uri:
            reference: object = _listing(store, self.reference_uri)
        else:
            assert self.model_name is not None  # checked at construction
            reference = alias_version(mlflow_client(), self.model_name, self.model_alias)
        predictions = _listing(store, self.predictions_uri) if self.predictions_uri else None
        inputs = json.dumps([_listing(store, self.current_uri), reference, *([predictions] if predictions else [])])
        return hashlib.sha256(inputs.encode()).hexdigest()


@dataclass(frozen=True)
class DriftOutcome:
    """What one check found and decided.

    :param summary: what was compared and the verdicts (with ``report_uri`` when stored, ``episode`` with
        episode state).
    :param fired: whether this check signals drift: the dataset drifted, and, with episode state, a new
        episode's event is due.
    :param reason: why, e.g. ``drift episode started`` or ``no drift``.
    """

    summary: DriftSummary
    fired: bool
    reason: str

    @property
    def report_uri(self) -> str | None:
        """The stored report (Evidently's HTML when rendered, else the summary), if any."""
        return self.summary.get("report_uri")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serializable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftOutcome:
        """Rebuild an outcome from :meth:`to_dict` output.

        :param data: field values.
        """
        return cls(**data)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _number(value: object) -> float:
    """``value`` as a float for a range check; NaN (which fails every comparison) for anything not a real number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _integer(value: object) -> float:
    """``value`` for a range check of an integer setting; NaN for anything else (a float, a bool, a string)."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else math.nan


def _parse_number(value: Any, name: str, kind: type[float] | type[int] = float) -> float:
    """A rendered template's number (``"0.05"``), with a message naming the setting when it is not one."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"drift_config {name}={value!r} is not a number") from None


def _listing(store: ObjectStore, uri: str) -> list[ObjectVersion] | None:
    """The objects under ``uri`` with their versions; ``None`` when its bucket does not exist."""
    try:
        return store.list_with_versions(uri)
    except FileNotFoundError:
        return None
