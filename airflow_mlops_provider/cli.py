"""The ``airflow-mlops`` command line. Heavy libraries are imported by the subcommands, so ``--help`` is fast.

``airflow-mlops suite init --from <dataset-uri> --out <suite.json>`` profiles reference data into a starter
Great Expectations suite, checks that the suite passes on that data, and writes it. Data it cannot profile
into a trustworthy suite (a truncated CSV file, infinite values, mixed types, no rows) is refused with exit
code 2 and one line saying why; nothing is written then. Entirely null columns are expected to stay null,
and named for review.

``airflow-mlops new pipeline NAME --from <dataset-uri> --target COLUMN`` writes a continuous-training
pipeline for that data into a DAGs folder: ``<name>_ct.py`` (a training DAG and a drift-monitor DAG) and
the gate's suite ``expectations/<name>.json``.

``airflow-mlops history MODEL`` prints the champion history of a registered model (every alias move:
when, which alias, from which version to which, promotion, approval or rollback, by whom, why), newest
last; ``--json`` prints it as a JSON list. The server is ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``,
else the Airflow ``mlflow`` connection (``--conn-id``, default ``mlflow_default``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_mlops_provider.contracts import PROBLEM_TYPES

PROG = "airflow-mlops"


def _suite_init(args: argparse.Namespace) -> int:
    """Profile ``args.source`` into a suite, check it on the same data, and write it to ``args.out``."""
    from airflow_mlops_provider.core.io.datasets import read_batch
    from airflow_mlops_provider.core.validation.profiler import NULL_COLUMNS, ProfileOptions, profile_suite

    out = Path(args.out)
    if out.is_dir():
        return _error(f"{out} is a folder: --out names the suite's JSON file")
    if out.exists() and not args.force:
        return _error(f"{out} exists; pass --force to overwrite it")
    try:
        frame = read_batch(args.source)
        options = ProfileOptions(margin=args.margin, max_categories=args.max_categories, no_range=tuple(args.no_range))
        suite = profile_suite(frame, name=args.name or out.stem, options=options, source=args.source)
    except (ValueError, OSError) as err:
        return _error(str(err))
    if args.check and not _passes_on_its_data(frame, suite):
        return 1
    _write_suite(out, suite)
    print(f"Wrote {len(suite['expectations'])} expectations over {frame.shape[1]} columns to {out}")
    null_columns = suite["meta"]["profile"].get(NULL_COLUMNS)
    if null_columns:
        print(f"Review: {null_columns} are entirely null in the reference data; the suite expects them to stay null")
    return 0


def _new_pipeline(args: argparse.Namespace) -> int:
    """Plan a pipeline for ``args.source``, profile its suite, check it, and write the DAG file and the suite."""
    from airflow_mlops_provider._optional import MissingExtraError, require_extra

    try:
        require_extra("gx")
    except MissingExtraError as err:
        return _error(str(err))
    from airflow_mlops_provider.core import scaffold

    try:
        name = scaffold.check_name(args.name)
        files = scaffold.pipeline_files(Path(args.dags_folder), name)
        existing = [str(path) for path in files.all if path.exists()]
        if existing and not args.force:
            verb = "exists" if len(existing) == 1 else "exist"
            return _error(f"{' and '.join(existing)} already {verb}; pass --force to overwrite")
        uri = scaffold.data_uri_of(args.source)
        frame = scaffold.read_data(uri)
        plan = scaffold.plan_pipeline(frame, name, uri, args.target, args.problem_type, args.time_column)
        suite = scaffold.gate_suite(frame, plan)
    except scaffold.ScaffoldError as err:
        return _error(str(err))
    if args.check and not _passes_on_its_data(frame, suite):
        return 1
    _write_suite(files.suite, suite)
    files.dag.write_text(scaffold.render_dag(plan))
    print(scaffold.next_steps(plan, files, len(suite["expectations"])))
    return 0


def _history(args: argparse.Namespace) -> int:
    """Print the champion history of ``args.model``."""
    from airflow_mlops_provider._optional import MissingExtraError, require_extra

    try:
        require_extra("trainer")
    except MissingExtraError as err:
        return _error(str(err))
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from airflow_mlops_provider.core.models.history import UnknownModelError, format_history, read_history

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        from airflow_mlops_provider.hooks.mlflow import MlflowHook

        try:
            uri = MlflowHook(args.conn_id).tracking_uri
        except Exception as err:  # no such connection, or one that names no server
            return _error(f"no tracking URI: pass --tracking-uri, set MLFLOW_TRACKING_URI, or set up the "
                          f"Airflow connection {args.conn_id!r} ({err})")  # fmt: skip
    try:
        entries = read_history(MlflowClient(tracking_uri=uri, registry_uri=uri), args.model)
    except UnknownModelError as err:
        return _error(f"{err} on {uri}")
    except MlflowException as err:
        return _error(f"MLflow at {uri} did not answer: {err}")
    if args.json:
        print(json.dumps([entry.to_dict() for entry in entries], indent=2))
    else:
        print(format_history(entries))
    return 0


def _passes_on_its_data(frame: Any, suite: dict[str, Any]) -> bool:
    """Validate the profiled ``suite`` on the ``frame`` it was profiled from; print why when it fails."""
    from airflow_mlops_provider.core.validation.suites import validate_frame

    result = validate_frame(frame, suite)
    if not result.success:
        print(f"{PROG}: the profiled suite fails on its own data:\n{result.message}", file=sys.stderr)
    return bool(result.success)


def _write_suite(path: Path, suite: dict[str, Any]) -> None:
    """Write ``suite`` as indented JSON, creating its folder; atomically, so an interruption leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(suite, indent=2, allow_nan=False) + "\n"
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _error(message: str) -> int:
    """Print ``message`` as one line on stderr; the exit code of bad input."""
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Tools of the airflow-mlops-provider.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    suite = commands.add_parser("suite", help="Great Expectations suites", description="Great Expectations suites.")
    suite_commands = suite.add_subparsers(title="commands", required=True, metavar="COMMAND")
    init = suite_commands.add_parser(
        "init",
        help="profile reference data into a starter suite",
        description="Profile reference data into a starter GX 1.x suite: column presence and types, null-rate "
        "bounds, numeric ranges widened by a margin, category sets, row-count bounds. The suite is checked "
        "against the data it came from before it is written. Review it before relying on it.",
    )
    init.add_argument("--from", dest="source", required=True, metavar="URI", help="dataset: parquet/CSV, path or s3://")
    init.add_argument("--out", required=True, metavar="PATH", help="the suite JSON file to write")
    init.add_argument("--name", help="the suite's name (default: the file name without .json)")
    init.add_argument("--margin", type=float, default=0.1, help="relative slack of every bound (default: 0.1)")
    init.add_argument(
        "--max-categories", type=int, default=20, help="string columns with at most this many values get a set"
    )
    init.add_argument(
        "--no-range", action="append", default=[], metavar="COLUMN", help="no range for this column (repeatable)"
    )
    init.add_argument("--no-check", dest="check", action="store_false", help="skip checking the suite on the data")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(handler=_suite_init)

    new = commands.add_parser("new", help="scaffold new pipelines", description="Scaffold new pipelines.")
    new_commands = new.add_subparsers(title="commands", required=True, metavar="COMMAND")
    pipeline = new_commands.add_parser(
        "pipeline",
        help="write a continuous-training pipeline for a dataset",
        description="Write a continuous-training pipeline for a dataset into a DAGs folder: <name>_ct.py, with "
        "a training DAG (GX gate, training with a split policy, registration, promotion; weekly and on drift) "
        "and a drift-monitor DAG, and the gate's suite expectations/<name>.json, profiled from the data and "
        "checked on it. Features are the other columns, numeric or categorical by dtype.",
    )
    pipeline.add_argument("name", metavar="NAME", help="the model's name: an identifier, e.g. churn")
    pipeline.add_argument(
        "--from", dest="source", required=True, metavar="URI", help="the data: one parquet/CSV file, path or s3://"
    )
    pipeline.add_argument("--target", required=True, metavar="COLUMN", help="the label column")
    pipeline.add_argument(
        "--time-column", metavar="COLUMN", help="the event-time column: a temporal split and a windowed drift check"
    )
    pipeline.add_argument(
        "--problem-type",
        choices=sorted(PROBLEM_TYPES),
        help="default: binary for a 0/1 target, else regression",
    )
    pipeline.add_argument("--dags-folder", default="dags", metavar="DIR", help="where to write (default: ./dags)")
    pipeline.add_argument("--no-check", dest="check", action="store_false", help="skip checking the suite on the data")
    pipeline.add_argument("--force", action="store_true", help="overwrite existing files")
    pipeline.set_defaults(handler=_new_pipeline)

    history = commands.add_parser(
        "history",
        help="print the champion history of a registered model",
        description="Print every alias move of a registered model, newest last: when (UTC), which alias, from "
        "which version to which, the kind (promotion, approval, rollback), who decided and why. The MLflow "
        "server is --tracking-uri, else MLFLOW_TRACKING_URI, else the Airflow connection --conn-id.",
    )
    history.add_argument("model", metavar="MODEL", help="the registered model's name")
    history.add_argument("--tracking-uri", metavar="URI", help="the MLflow server, e.g. http://localhost:5000")
    history.add_argument(
        "--conn-id",
        default="mlflow_default",
        metavar="ID",
        help="the Airflow mlflow connection (default: mlflow_default)",
    )
    history.add_argument("--json", action="store_true", help="print the entries as a JSON list")
    history.set_defaults(handler=_history)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    :param argv: the arguments, without the program name; ``sys.argv[1:]`` if ``None``.
    :return: the exit code: 0 success, 1 a profiled suite fails on its source data, 2 bad input.
    """
    args = _parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
