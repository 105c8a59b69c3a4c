"""Validate a data frame against a Great Expectations 1.x suite, and summarize the outcome compactly.

Great Expectations is imported inside the functions (it takes seconds), so importing this module stays
cheap. Every context is ephemeral and configured for unattended use: no analytics, no progress bars, and
no Data Docs site (so no temporary Data Docs folder is created, let alone left behind); Data Docs pages
are rendered in memory by :func:`render_data_docs`. GX's INFO chatter (dozens of lines per import) is
kept out of task logs unless a level was set on the ``great_expectations`` logger.

What a validation produces is bounded, whatever the data holds, because it goes to XCom, task logs and
the quarantine's result file: a value is shown with at most :data:`MAX_VALUE_CHARS` characters, a list or
mapping with at most :data:`MAX_ITEMS` entries, a failure's line with at most :data:`MAX_LINE_CHARS`, and
at most :data:`MAX_FAILURES` failures are listed; each cut says what it left out (``... (N more)``).
The Data Docs page shows more: values cut to :data:`MAX_DOCS_VALUE_CHARS` characters, lists to
:data:`MAX_DOCS_ITEMS` entries. An empty dataset never passes: on zero rows every column check
holds vacuously.
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
#: Characters of one value (a sample, a bound, an error) kept in messages and records.
MAX_VALUE_CHARS = 100
#: Entries of one list or mapping (a value set, an observed value) kept in messages and records.
MAX_ITEMS = 10
#: Characters of one failure's line.
MAX_LINE_CHARS = 500
#: Failures listed in a result's message and record; the statistics count them all.
MAX_FAILURES = 20
#: Characters of one value shown in the Data Docs page.
MAX_DOCS_VALUE_CHARS = 1_000
#: Entries of one list or mapping shown in the Data Docs page (e.g. an observed set of distinct values).
MAX_DOCS_ITEMS = 1_000


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
    :param failures: the expectations that did not hold, at most :data:`MAX_FAILURES`.
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
        if self.row_count == 0:
            lines = [f"Suite {self.suite_name!r} failed: the dataset has no rows, so no expectation checked anything."]
        else:
            lines = [
                f"Suite {self.suite_name!r} failed on {self.row_count} rows: "
                f"{stats['unsuccessful_expectations']} of {stats['evaluated_expectations']} expectations failed:"
            ]
        lines += [f"- {failure.message}" for failure in self.failures]
        unlisted = stats["unsuccessful_expectations"] - len(self.failures)
        if unlisted > 0:
            lines.append(f"- ... ({unlisted} more failures: see the Data Docs)")
        return "\n".join(lines)

    def to_record(self) -> ValidationRecord:
        """Return the result as a JSON-safe record, with :attr:`message` included (the operator adds where
        the data and its Data Docs are)."""
        record = ValidationRecord(
            success=self.success,
            suite_name=self.suite_name,
            row_count=self.row_count,
            statistics=self.statistics,
            failures=[asdict(failure) for failure in self.failures],
            message=self.message,
        )
        strict: ValidationRecord = json.loads(json.dumps(record), parse_constant=str)  # inf and NaN as text
        return strict


def load_suite(raw: Mapping[str, Any] | str | bytes) -> ExpectationSuite:
    """Build a GX suite from its JSON form, strictly: GX itself drops invalid expectations with a log line.

    :param raw: a GX 1.x suite (``name``, ``expectations``, optional ``meta``, ...): parsed, or its JSON text.
    :raises ValueError: if the text is not JSON, or the suite has no name, no list of expectations, an
        unknown key, an unknown expectation type or an invalid expectation.
    """
    gx = _import_gx()
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError as err:
            raise ValueError(f"the suite is not valid JSON: {err}") from err
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise ValueError("not a GX 1.x expectation suite: it needs a non-empty 'name' (0.x suites need migrating)")
    name = _clip(raw["name"])
    expectations = raw.get("expectations") or []
    if not isinstance(expectations, list):
        raise ValueError(f"suite {name!r}: 'expectations' must be a list, got {type(expectations).__name__}")
    if not expectations:
        raise ValueError(f"suite {name!r} has no expectations: it would pass any data")
    for index, expectation in enumerate(expectations):
        if not isinstance(expectation, Mapping) or not isinstance(expectation.get("type"), str):
            shown = _clip(json.dumps(expectation, default=str))
            raise ValueError(f"suite {name!r}: expectation #{index} is not an object with a 'type': {shown}")
        kind = _clip(expectation["type"])
        try:
            ExpectationConfiguration(**expectation).to_domain_obj()
        except ExpectationNotFoundError as err:
            raise ValueError(f"suite {name!r}: expectation #{index}: unknown expectation type {kind!r}") from err
        except Exception as err:
            reason = _clip(" ".join(str(err).split()), MAX_LINE_CHARS)
            raise ValueError(f"suite {name!r}: expectation #{index} ({kind}) is invalid: {reason}") from err
    try:
        return gx.ExpectationSuite(**raw)
    except TypeError as err:
        raise ValueError(f"suite {name!r} is not a GX 1.x suite: {err}") from err


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
    unsuccessful = [evr for evr in gx_result.results if not evr.success]
    return ValidationResult(
        suite_name=_clip(gx_result.suite_name),
        success=bool(gx_result.success) and row_count > 0,
        row_count=row_count,
        statistics=_bounded(dict(gx_result.statistics)),
        failures=_with_messages([_failure(evr, sample_size) for evr in unsuccessful[:MAX_FAILURES]]),
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

    Values are cut to :data:`MAX_DOCS_VALUE_CHARS` characters and lists to :data:`MAX_DOCS_ITEMS` entries
    for the page (``gx_result`` itself is left as it was).

    :param gx_result: the result of :func:`run_suite`.
    """
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    full = [evr.result for evr in gx_result.results]
    try:
        for evr in gx_result.results:
            evr.result = _bounded(evr.result, MAX_DOCS_VALUE_CHARS, MAX_DOCS_ITEMS)
        return str(DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(gx_result)))
    finally:
        for evr, result in zip(gx_result.results, full, strict=True):
            evr.result = result


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
    """Condense one unsuccessful expectation result, every value bounded."""
    data: dict[str, Any] = evr.to_json_dict()
    config = data["expectation_config"]
    kwargs = {str(key): _bounded(value) for key, value in config["kwargs"].items() if key != "batch_id"}
    result = data.get("result") or {}
    observed = result.get("observed_value")
    if observed is None and "unexpected_count" not in result:  # e.g. {"missing_count": 1, "partial_missing_list": [..]}
        observed = {key: value for key, value in result.items() if key != "observed_value"} or None
    error = _error_message(data.get("exception_info") or {})
    return FailedExpectation(
        expectation_type=_clip(str(config["type"])),
        column=kwargs.get("column"),
        kwargs=kwargs,
        unexpected_count=_bounded(result.get("unexpected_count")),
        unexpected_percent=_bounded(result.get("unexpected_percent")),
        observed_value=_bounded(observed),
        sample=_distinct(result.get("partial_unexpected_list") or [], sample_size),
        error=None if error is None else _clip(error, MAX_LINE_CHARS),
    )


def _with_messages(failures: list[FailedExpectation]) -> list[FailedExpectation]:
    """Describe each failure; one that could not run because its column is missing or holds values of another
    type says just that."""
    missing = {f.column for f in failures if f.expectation_type == "expect_column_to_exist"}
    mistyped = {f.column for f in failures if f.expectation_type in _TYPE_CHECKS}
    described = []
    for failure in failures:
        if failure.error and failure.column in missing:
            failure = replace(failure, error="the column is missing")
        elif failure.error and failure.column in mistyped:
            failure = replace(failure, error="the column holds values of another type (see its type check)")
        described.append(replace(failure, message=_clip(_describe(failure), MAX_LINE_CHARS)))
    return described


def _clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text``, cut to ``limit`` characters with a note of how many were left out."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def _bounded(value: Any, chars: int = MAX_VALUE_CHARS, items: int = MAX_ITEMS) -> Any:
    """``value`` as plain JSON data, strings cut to ``chars`` and lists and mappings to ``items`` entries.

    numpy values become Python numbers and lists; anything else that is not JSON (timestamps, ...) becomes text.
    Non-finite floats stay floats (:meth:`ValidationResult.to_record` writes them as text).

    :param value: what to bound.
    :param chars: characters kept of a string.
    :param items: entries kept of a list or mapping.
    """
    if callable(getattr(value, "tolist", None)):  # numpy scalars (np.float64 is a float) and arrays
        return _bounded(value.tolist(), chars, items)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _clip(value, chars)
    if isinstance(value, Mapping):
        pairs = list(value.items())
        bounded = {_clip(str(key), chars): _bounded(item, chars, items) for key, item in pairs[:items]}
        if len(pairs) > items:
            bounded["..."] = f"{len(pairs) - items} more"
        return bounded
    if isinstance(value, list | tuple):
        kept = [_bounded(item, chars, items) for item in value[:items]]
        return [*kept, f"... ({len(value) - items} more)"] if len(value) > items else kept
    return _clip(str(value), chars)


def _distinct(values: list[Any], limit: int) -> list[Any]:
    """The first ``limit`` distinct values, in order, bounded."""
    unique: dict[str, Any] = {}
    for value in values:
        bounded = _bounded(value)
        unique.setdefault(json.dumps(bounded, sort_keys=True, default=str), bounded)
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


_TYPE_CHECKS = ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list")

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
