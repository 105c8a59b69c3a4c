"""The ``airflow-mlops`` command line. Heavy libraries are imported by the subcommands, so ``--help`` is fast.

``airflow-mlops suite init --from <dataset-uri> --out <suite.json>`` profiles reference data into a starter
Great Expectations suite, checks that the suite passes on that data, and writes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

PROG = "airflow-mlops"


def _suite_init(args: argparse.Namespace) -> int:
    """Profile ``args.source`` into a suite, check it on the same data, and write it to ``args.out``."""
    from airflow_mlops_provider.core.io.datasets import read_dataset
    from airflow_mlops_provider.core.validation.profiler import ProfileOptions, profile_suite

    out = Path(args.out)
    if out.exists() and not args.force:
        return _error(f"{out} exists; pass --force to overwrite it")
    try:
        frame = read_dataset(args.source)
        options = ProfileOptions(margin=args.margin, max_categories=args.max_categories, no_range=tuple(args.no_range))
        suite = profile_suite(frame, name=args.name or out.stem, options=options, source=args.source)
    except (ValueError, OSError) as err:
        return _error(str(err))
    if args.check:
        from airflow_mlops_provider.core.validation.suites import validate_frame

        result = validate_frame(frame, suite)
        if not result.success:
            print(f"{PROG}: the profiled suite fails on its own data:\n{result.message}", file=sys.stderr)
            return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(suite, indent=2) + "\n")
    print(f"Wrote {len(suite['expectations'])} expectations over {frame.shape[1]} columns to {out}")
    return 0


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    :param argv: the arguments, without the program name; ``sys.argv[1:]`` if ``None``.
    :return: the exit code: 0 success, 1 the suite fails on its source data, 2 bad input.
    """
    args = _parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
