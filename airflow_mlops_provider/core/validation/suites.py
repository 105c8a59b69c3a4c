"""Validate a data frame against a Great Expectations 1.x suite, and summarize the outcome compactly.

Great Expectations is imported inside the functions (it takes seconds), so importing this module stays
cheap. Every context is ephemeral and configured for unattended use: no analytics, no progress bars, and
no Data Docs site (so no temporary Data Docs folder is created, let alone left behind); Data Docs pages
are rendered in memory by :func:`render_data_docs`. GX's INFO chatter (dozens of lines per import) is
kept out of task logs unless a level was set on the ``great_expectations`` logger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.contracts import ValidationRecord

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.data_context import EphemeralDataContext

#: How many distinct unexpected values a failure keeps as its sample.
DEFAULT_SAMPLE_SIZE = 5


@dataclass(frozen=True)
class FailedExpectation:
    """One expectation that did not hold.

    :param expectation_type: e.g. ``expect_column_values_to_be_between``.
    :param column: the column it is about; ``None`` for table-level expectations.
    :param kwargs: its arguments (bounds, value sets, ``mostly``, ...), JSON-safe.
    :param unexpected_count: how many values broke it (column-map expectations only).
    :param unexpected_percent: the same, as a percentage.
    :param observed_value: what was observed (aggregate expectations only), JSON-safe.
    :param sample: a few distinct unexpected values, JSON-safe.
    :param error: the error message when the expectation could not be evaluated at all.
    :param message: one human-readable line saying what failed.
    """

    expectation_type: str
    column: str | None
    kwargs: dict[str, Any]
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    sample: list[Any] = field(default_factory=list)
    error: str | None = None
    message: str = ""


@dataclass(frozen=True)
class ValidationResult:
    """The compact outcome of validating one frame against one suite (small enough for XCom).

    :param suite_name: the suite's name.
    :param success: whether every expectation held.
    :param row_count: rows validated.
    :param statistics: GX's counts: evaluated, successful and unsuccessful expectations, success percent.
    :param failures: the expectations that did not hold.
    """

    suite_name: str
    success: bool
    row_count: int
    statistics: dict[str, Any]
    failures: list[FailedExpectation]

    @property
    def message(self) -> str:
        """A human-readable summary that lists every failure, one per line."""
        stats = self.statistics
        if self.success:
            return (
                f"Suite {self.suite_name!r} passed on {self.row_count} rows: "
                f"all {stats['evaluated_expectations']} expectations met."
            )
        lines = [
            f"Suite {self.suite_name!r} failed on {self.row_count} rows: "
            f"{stats['unsuccessful_expectations']} of {stats['evaluated_expectations']} expectations failed:"
        ]
        lines += [f"- {failure.message}" for failure in self.failures]
        return "\n".join(lines)

    def to_record(self) -> ValidationRecord:
        """Return the result as a JSON-safe record, with :attr:`message` included (the operator adds where
        the data and its Data Docs are)."""
        return ValidationRecord(
            success=self.success,
            suite_name=self.suite_name,
            row_count=self.row_count,
            statistics=self.statistics,
            failures=[asdict(failure) for failure in self.failures],
            message=self.message,
        )


def load_suite(raw: Mapping[str, Any]) -> ExpectationSuite:
    """Build a GX suite from its JSON form, strictly: GX itself drops invalid expectations with a log line.

    :param raw: the parsed JSON of a GX 1.x suite (``name``, ``expectations``, optional ``meta``, ...).
    :raises ValueError: if the suite has no name, no expectations, an unknown key or an invalid expectation.
    """
    gx = _import_gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise ValueError("not a GX 1.x expectation suite: it needs a non-empty 'name' (0.x suites need migrating)")
    expectations = raw.get("expectations") or []
    if not expectations:
        raise ValueError(f"suite {raw['name']!r} has no expectations: it would pass any data")
    for index, expectation in enumerate(expectations):
        try:
            ExpectationConfiguration(**expectation).to_domain_obj()
        except Exception as err:
            kind = expectation.get("type") if isinstance(expectation, Mapping) else None
            raise ValueError(f"suite {raw['name']!r}: expectation #{index} ({kind}) is invalid: {err}") from err
    try:
        return gx.ExpectationSuite(**raw)
    except TypeError as err:
        raise ValueError(f"suite {raw['name']!r} is not a GX 1.x suite: {err}") from err


def run_suite(df: pd.DataFrame, suite: ExpectationSuite) -> ExpectationSuiteValidationResult:
    """Validate ``df`` against ``suite`` in a fresh ephemeral context; return GX's full result.

    :param df: the data.
    :param suite: the suite, e.g. from :func:`load_suite`.
    """
    batch = (
        _ephemeral_context()
        .data_sources.add_pandas("frame")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("frame")
        .get_batch(batch_parameters={"dataframe": df})
    )
    return batch.validate(suite, result_format="SUMMARY")


def summarize(
    gx_result: ExpectationSuiteValidationResult, row_count: int, sample_size: int = DEFAULT_SAMPLE_SIZE
) -> ValidationResult:
    """Condense GX's result to what a gate, a log line and an XCom need.

    :param gx_result: the result of :func:`run_suite`.
    :param row_count: rows validated.
    :param sample_size: distinct unexpected values kept per failure.
    """
    return ValidationResult(
        suite_name=gx_result.suite_name,
        success=bool(gx_result.success),
        row_count=row_count,
        statistics=json.loads(json.dumps(gx_result.statistics, default=_plain)),
        failures=_with_messages([_failure(evr, sample_size) for evr in gx_result.results if not evr.success]),
    )


def validate_frame(
    df: pd.DataFrame, suite: Mapping[str, Any], sample_size: int = DEFAULT_SAMPLE_SIZE
) -> ValidationResult:
    """Validate ``df`` against a suite given in its JSON form.

    :param df: the data.
    :param suite: the parsed JSON of a GX 1.x suite.
    :param sample_size: distinct unexpected values kept per failure.
    :raises ValueError: if the suite is invalid (see :func:`load_suite`).
    """
    return summarize(run_suite(df, load_suite(suite)), len(df), sample_size)


def render_data_docs(gx_result: ExpectationSuiteValidationResult) -> str:
    """Render GX's Data Docs page for one validation result as a standalone HTML document.

    :param gx_result: the result of :func:`run_suite`.
    """
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    return str(DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(gx_result)))


def _import_gx() -> ModuleType:
    """Import GX with its logger at WARNING, unless a level was configured for it."""
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations

    return great_expectations


def _ephemeral_context() -> EphemeralDataContext:
    """An in-memory context without analytics, progress bars or a (temporary) Data Docs site."""
    gx = _import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,  # the context-level twin of GX_ANALYTICS_ENABLED=false
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _failure(evr: ExpectationValidationResult, sample_size: int) -> FailedExpectation:
    """Condense one unsuccessful expectation result."""
    data: dict[str, Any] = json.loads(json.dumps(evr.to_json_dict(), default=_plain))
    config = data["expectation_config"]
    kwargs = {key: value for key, value in config["kwargs"].items() if key != "batch_id"}
    result = data.get("result") or {}
    observed = result.get("observed_value")
    if observed is None and "unexpected_count" not in result:  # e.g. {"missing_count": 1, "partial_missing_list": [..]}
        observed = {key: value for key, value in result.items() if key != "observed_value"} or None
    failure = FailedExpectation(
        expectation_type=config["type"],
        column=kwargs.get("column"),
        kwargs=kwargs,
        unexpected_count=result.get("unexpected_count"),
        unexpected_percent=result.get("unexpected_percent"),
        observed_value=observed,
        sample=_distinct(result.get("partial_unexpected_list") or [], sample_size),
        error=_error_message(data.get("exception_info") or {}),
    )
    return failure


def _with_messages(failures: list[FailedExpectation]) -> list[FailedExpectation]:
    """Describe each failure; one that could not run because its column is missing says just that."""
    missing = {f.column for f in failures if f.expectation_type == "expect_column_to_exist"}
    described = []
    for failure in failures:
        if failure.error and failure.column in missing:
            failure = replace(failure, error="the column is missing")
        described.append(replace(failure, message=_describe(failure)))
    return described


def _plain(value: Any) -> Any:
    """JSON fallback: numpy scalars as Python numbers, anything else (timestamps, ...) as text."""
    return value.item() if hasattr(value, "item") and callable(value.item) else str(value)


def _distinct(values: list[Any], limit: int) -> list[Any]:
    """The first ``limit`` distinct values, in order."""
    unique: dict[str, Any] = {}
    for value in values:
        unique.setdefault(json.dumps(value, sort_keys=True, default=str), value)
        if len(unique) == limit:
            break
    return list(unique.values())


def _error_message(exception_info: Mapping[str, Any]) -> str | None:
    """The message of an exception GX caught while evaluating an expectation, if any."""
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, Mapping) and info.get("raised_exception"):
            return str(info.get("exception_message") or "unknown error")
    return None


# -- one-line descriptions of failures ------------------------------------------------------------------------


def _describe(failure: FailedExpectation) -> str:
    """One line saying what failed, specific to the common expectation types."""
    if failure.error:
        subject = f"column {failure.column!r}" if failure.column else "the table"
        return f"{failure.expectation_type} on {subject} could not be evaluated: {failure.error}"
    return _DESCRIBERS.get(failure.expectation_type, _describe_other)(failure)


def _count(failure: FailedExpectation, noun: str = "value") -> str:
    """E.g. ``"12 values (1.2%)"``."""
    count = failure.unexpected_count or 0
    text = f"{count} {noun}{'' if count == 1 else 's'}"
    return text if failure.unexpected_percent is None else f"{text} ({failure.unexpected_percent:.3g}%)"


def _details(failure: FailedExpectation) -> str:
    """The allowance when ``mostly`` is below 1, then a few unexpected values."""
    mostly = failure.kwargs.get("mostly")
    text = f" (at most {100 * (1 - mostly):.3g}% allowed)" if mostly is not None and mostly < 1 else ""
    return text + (f"; e.g. {', '.join(repr(value) for value in failure.sample)}" if failure.sample else "")


def _interval(kwargs: Mapping[str, Any]) -> str:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    left = "(" if kwargs.get("strict_min") or low is None else "["
    right = ")" if kwargs.get("strict_max") or high is None else "]"
    return f"{left}{'-inf' if low is None else _number(low)}, {'inf' if high is None else _number(high)}{right}"


def _number(value: Any) -> Any:
    """``50.0`` as ``50``; anything else unchanged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _describe_missing_column(failure: FailedExpectation) -> str:
    return f"column {failure.column!r} is missing"


def _describe_type(failure: FailedExpectation) -> str:
    kwargs = failure.kwargs
    expected = kwargs["type_"] if "type_" in kwargs else f"one of {kwargs.get('type_list')}"
    if failure.unexpected_count:  # object columns are checked value by value
        return f"column {failure.column!r} has {_count(failure)} not of type {expected}{_details(failure)}"
    return f"column {failure.column!r} has type {failure.observed_value}, expected {expected}"


def _describe_nulls(failure: FailedExpectation) -> str:
    return f"column {failure.column!r} has {_count(failure, 'null')}{_details(replace(failure, sample=[]))}"


def _describe_range(failure: FailedExpectation) -> str:
    interval = _interval(failure.kwargs)
    return f"column {failure.column!r} has {_count(failure)} outside {interval}{_details(failure)}"


def _describe_set(failure: FailedExpectation) -> str:
    allowed = failure.kwargs.get("value_set")
    return f"column {failure.column!r} has {_count(failure)} not in {allowed}{_details(failure)}"


def _describe_absent_values(failure: FailedExpectation) -> str:
    observed = failure.observed_value if isinstance(failure.observed_value, Mapping) else {}
    absent = observed.get("partial_missing_list", "some")
    return f"column {failure.column!r} lacks {absent} of the required values {failure.kwargs.get('value_set')}"


def _describe_row_count(failure: FailedExpectation) -> str:
    return f"row count {failure.observed_value} is outside {_interval(failure.kwargs)}"


def _describe_other(failure: FailedExpectation) -> str:
    subject = f"column {failure.column!r}" if failure.column else "the table"
    if failure.unexpected_count is not None:
        return f"{failure.expectation_type} failed on {subject}: {_count(failure)} unexpected{_details(failure)}"
    arguments = {key: value for key, value in failure.kwargs.items() if key != "column"}
    return f"{failure.expectation_type} failed on {subject}: observed {failure.observed_value!r}, expected {arguments}"


_DESCRIBERS: dict[str, Callable[[FailedExpectation], str]] = {
    "expect_column_to_exist": _describe_missing_column,
    "expect_column_values_to_be_of_type": _describe_type,
    "expect_column_values_to_be_in_type_list": _describe_type,
    "expect_column_values_to_not_be_null": _describe_nulls,
    "expect_column_values_to_be_between": _describe_range,
    "expect_column_values_to_be_in_set": _describe_set,
    "expect_column_distinct_values_to_contain_set": _describe_absent_values,
    "expect_table_row_count_to_be_between": _describe_row_count,
}
