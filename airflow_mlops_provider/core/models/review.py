"""What a person sees before approving a promotion, and what their answer does to the record (Airflow-free)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_mlops_provider.contracts import PromotionRecord, Tag


def pending_record(tags: Mapping[str, str]) -> PromotionRecord | None:
    """The promotion record of a version's tags when it awaits approval, else ``None``.

    :param tags: the version's tags.
    """
    raw = tags.get(Tag.PROMOTION)
    if not raw:
        return None
    record: PromotionRecord = json.loads(raw)
    return record if record.get("awaiting_approval") else None


def _score(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"


def approval_brief(
    record: PromotionRecord, lineage: Mapping[str, str], version_url: str, champion_url: str | None
) -> str:
    """The Markdown body of the approval request: scores, policy, lineage and links.

    :param record: the pending promotion record.
    :param lineage: the challenger version's :attr:`Tag.LINEAGE` tags.
    :param version_url: the MLflow page of the challenger version.
    :param champion_url: the MLflow page of the current champion (``None``: there is none).
    """
    metric = record.get("metric", "?")
    champion = record.get("champion_version")
    lines = [
        f"**{record.get('model_name')}** version **{record.get('version')}** passed the promotion policy and "
        "waits for your approval to become `champion`.",
        "",
        "| | version | " + metric + " |",
        "| --- | --- | --- |",
        f"| challenger | [{record.get('version')}]({version_url}) | {_score(record.get('challenger_score'))} |",
        f"| champion | {f'[{champion}]({champion_url})' if champion else 'none'} | "
        f"{_score(record.get('champion_score'))} |",
        "",
        f"**Decision:** {record.get('reason', '')}",
        "",
        f"**Policy:** `{json.dumps(record.get('policy', {}), sort_keys=True)}`",
        f"**Holdout:** {record.get('holdout_rows', '?')} rows of `{record.get('holdout_uri', '?')}` "
        f"(digest `{record.get('holdout_digest', '?')}`)",
    ]
    if lineage:
        lines += ["", "**Lineage:**", ""] + [f"- `{key}`: `{value}`" for key, value in sorted(lineage.items())]
    lines += ["", "Approve moves `champion` to it (and `previous_champion` to the current champion); reject tags it "
              "`rejected` with your reason. Give a reason either way: it is recorded."]  # fmt: skip
    return "\n".join(lines)


def reviewed_record(record: PromotionRecord, approved: bool, reviewer: str, reason: str) -> PromotionRecord:
    """The record after a person's answer: ``promote`` is the answer, and who gave it, and why, are kept.

    :param record: the pending record.
    :param approved: the answer.
    :param reviewer: who answered.
    :param reason: the reason they gave.
    """
    return PromotionRecord(
        **{**record, "promote": approved, "awaiting_approval": False, "reviewed_by": reviewer, "review_reason": reason}
    )
