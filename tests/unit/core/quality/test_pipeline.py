"""Live quality from delayed labels, on explicit rows whose metrics are worked out by hand below."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from airflow_mlops_provider.core.drift.episodes import EpisodeStateFile
from airflow_mlops_provider.core.drift.spec import EpisodePolicy
from airflow_mlops_provider.core.io.datasets import read_dataset, write_dataset
from airflow_mlops_provider.core.io.storage import ObjectStore
from airflow_mlops_provider.core.quality.champion import Champion
from airflow_mlops_provider.core.quality.pipeline import (
    NoPredictionsError,
    QualitySpec,
    Verdict,
    run_quality_check,
)
from airflow_mlops_provider.core.quality.policy import QualityPolicy

DAY1, DAY2, DAY3 = "2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z", "2026-01-03T10:00:00Z"
NOW = pd.Timestamp("2026-01-04T00:00:00Z").timestamp()
CHAMPION = Champion("churn", "1", "run-1", "binary", "churned", "roc_auc", 0.9)


def predictions(rows: list[tuple[str, str, float]], version: str = "1", scored_at: str = "2026-01-03T00:00:00Z"):
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "event_timestamp": pd.to_datetime([r[1] for r in rows], utc=True),
            "prediction": [r[2] for r in rows],
            "model_version": version,
            "scored_at": scored_at,
        }
    )


def labels(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    # As the ingested raw batches are read from CSV: ISO strings with Z.
    return pd.DataFrame(
        {"customer_id": [r[0] for r in rows], "event_timestamp": [r[1] for r in rows], "churned": [r[2] for r in rows]}
    )


def spec(root: Path, **kwargs: object) -> QualitySpec:
    return QualitySpec(
        model_name="churn", predictions_uri=f"{root}/predictions/", labels_uri=f"{root}/labels/",
        label_column="churned", entity_columns=("customer_id",), series_uri=f"{root}/quality/series.parquet",
        state_uri=f"{root}/quality/episodes.json", **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def root(tmp_path: Path) -> Path:
    # Run 1 of batch inference scored day 1; c1 was re-scored by run 2, whose score counts (the latest).
    write_dataset(
        predictions(
            [("c1", DAY1, 0.1), ("c2", DAY1, 0.8), ("c3", DAY1, 0.3), ("c4", DAY1, 0.2)],
            scored_at="2026-01-01T12:00:00Z",
        ),
        str(tmp_path / "predictions" / "run1.parquet"),
    )
    write_dataset(
        predictions([("c1", DAY1, 0.9), ("c1", DAY2, 0.9), ("c2", DAY2, 0.2), ("c3", DAY2, 0.7), ("c4", DAY2, 0.4)]),
        str(tmp_path / "predictions" / "run2.parquet"),
    )
    # The labels known at first: c4's of day 1 is missing, and only c1's of day 2; c9 was never scored.
    write_dataset(
        labels([("c1", DAY1, 1), ("c2", DAY1, 0), ("c3", DAY1, 1), ("c9", DAY1, 1)]),
        str(tmp_path / "labels" / "b1.csv"),
    )
    write_dataset(labels([("c1", DAY2, 1)]), str(tmp_path / "labels" / "b2.csv"))
    return tmp_path


def late_labels(root: Path) -> None:
    write_dataset(
        labels([("c4", DAY1, 0), ("c2", DAY2, 0), ("c3", DAY2, 1), ("c4", DAY2, 0)]), str(root / "labels" / "b3.csv")
    )


def by_window(series: pd.DataFrame) -> dict[str, dict[str, object]]:
    return {row["window_start"][:10]: row for row in series.to_dict(orient="records")}


def test_live_quality_with_missing_then_late_labels(root: Path) -> None:
    policy = QualityPolicy("roc_auc", min_value=0.6, min_labels=3)
    first = run_quality_check(spec(root), policy, CHAMPION, ObjectStore(), now=NOW)
    rows = by_window(read_dataset(str(root / "quality" / "series.parquet")))
    # Day 1: labelled (0.9, 1), (0.8, 0), (0.3, 1): of the 2 positive-negative pairs, 0.9 > 0.8 ranks right,
    # 0.3 < 0.8 does not: AUC 1/2. 3 of 4 predictions labelled. Accuracy at 0.5: 0.9->1 yes, 0.8->1 no, 0.3->0 no.
    assert rows["2026-01-01"]["roc_auc"] == 0.5 and rows["2026-01-01"]["accuracy"] == pytest.approx(1 / 3)
    assert (rows["2026-01-01"]["predictions"], rows["2026-01-01"]["labels"]) == (4, 3)
    assert rows["2026-01-01"]["label_coverage"] == 0.75
    # Day 2: one label (one class): no AUC, and fewer than min_labels: no verdict.
    assert (rows["2026-01-02"]["labels"], rows["2026-01-02"]["label_coverage"]) == (1, 0.25)
    assert pd.isna(rows["2026-01-02"]["roc_auc"])
    verdicts = {w["window_start"][:10]: w["verdict"] for w in first.result["windows"]}
    assert verdicts == {"2026-01-01": Verdict.DECAYED, "2026-01-02": Verdict.INSUFFICIENT}
    # The newest window with a verdict is judged: day 1, below the floor.
    assert first.result["decayed"] and first.fired and first.result["window"].startswith("2026-01-01")
    assert (first.result["value"], first.result["floor"]) == (0.5, 0.6)

    late_labels(root)
    second = run_quality_check(spec(root), policy, CHAMPION, ObjectStore(), now=NOW + 86_400)
    series = read_dataset(str(root / "quality" / "series.parquet"))
    assert len(series) == 2  # one row per (version, window), replaced
    rows = by_window(series)
    # Day 1 now: positives {0.9, 0.3}, negatives {0.8, 0.2}: 0.9 beats both, 0.3 beats 0.2 only: AUC 3/4.
    assert rows["2026-01-01"]["roc_auc"] == 0.75 and rows["2026-01-01"]["label_coverage"] == 1.0
    # Day 2: positives {0.9, 0.7} above negatives {0.2, 0.4}: AUC 1, every prediction right at 0.5.
    assert (rows["2026-01-02"]["roc_auc"], rows["2026-01-02"]["accuracy"], rows["2026-01-02"]["labels"]) == (
        1.0,
        1.0,
        4,
    )
    assert not second.result["decayed"] and not second.fired and second.result["value"] == 1.0
    assert second.result["episode"] == "no decay; the decay episode ended"


def test_max_drop_is_measured_from_the_champions_holdout_score(root: Path) -> None:
    # Holdout AUC 0.9, at most 0.3 lower: floor 0.6 (the stricter of it and min_value 0.2).
    policy = QualityPolicy("roc_auc", min_value=0.2, max_drop=0.3, min_labels=3)
    other = Champion("churn", "1", "run-1", "binary", "churned", "log_loss", 0.3)  # promoted on another metric
    with pytest.raises(ValueError, match="max_drop needs the champion's holdout roc_auc"):
        run_quality_check(spec(root), policy, other, ObjectStore(), now=NOW)
    assert not (root / "quality").exists()  # nothing written
    outcome = run_quality_check(spec(root), policy, CHAMPION, ObjectStore(), now=NOW)
    assert outcome.result["floor"] == pytest.approx(0.6) and outcome.result["holdout_score"] == 0.9
    assert outcome.result["decayed"]


def test_decay_fires_once_per_episode_then_again_after_recovery_and_cooldown(root: Path) -> None:
    policy = QualityPolicy("roc_auc", min_value=0.8, min_labels=3)
    check = spec(root, episode_policy=EpisodePolicy(cooldown_seconds=3 * 86_400))
    fired = []

    def run(now: float, run_id: str) -> None:
        outcome = run_quality_check(check, policy, CHAMPION, ObjectStore(), now=now, claimant=run_id)
        fired.append(outcome.fired)

    run(NOW, "r1")  # day 1 decayed (0.5): an episode starts
    run(NOW + 10, "r2")  # nothing new: judged already
    late_labels(root)
    write_dataset(  # day 3: scored, labelled, bad (positives below negatives)
        predictions([("c1", DAY3, 0.1), ("c2", DAY3, 0.9), ("c3", DAY3, 0.2), ("c4", DAY3, 0.8)]),
        str(root / "predictions" / "run3.parquet"),
    )
    write_dataset(
        labels([("c1", DAY3, 1), ("c2", DAY3, 0), ("c3", DAY3, 1), ("c4", DAY3, 0)]), str(root / "labels" / "b4.csv")
    )
    run(NOW + 20, "r3")  # day 3 (AUC 0) is the newest: still the same episode
    write_dataset(  # day 4: good again: the episode ends
        predictions(
            [
                ("c1", "2026-01-04T10:00:00Z", 0.9),
                ("c2", "2026-01-04T10:00:00Z", 0.1),
                ("c3", "2026-01-04T10:00:00Z", 0.8),
            ]
        ),
        str(root / "predictions" / "run4.parquet"),
    )
    write_dataset(
        labels(
            [("c1", "2026-01-04T10:00:00Z", 1), ("c2", "2026-01-04T10:00:00Z", 0), ("c3", "2026-01-04T10:00:00Z", 1)]
        ),
        str(root / "labels" / "b5.csv"),
    )
    run(NOW + 30, "r4")
    write_dataset(  # day 5: bad again: a new episode, held back by the cooldown, then signalled
        predictions(
            [
                ("c1", "2026-01-05T10:00:00Z", 0.1),
                ("c2", "2026-01-05T10:00:00Z", 0.9),
                ("c3", "2026-01-05T10:00:00Z", 0.2),
            ]
        ),
        str(root / "predictions" / "run5.parquet"),
    )
    write_dataset(
        labels(
            [("c1", "2026-01-05T10:00:00Z", 1), ("c2", "2026-01-05T10:00:00Z", 0), ("c3", "2026-01-05T10:00:00Z", 1)]
        ),
        str(root / "labels" / "b6.csv"),
    )
    run(NOW + 40, "r5")
    write_dataset(labels([("c4", "2026-01-05T10:00:00Z", 0)]), str(root / "labels" / "b7.csv"))  # unscored: same window
    run(NOW + 50, "r6")
    write_dataset(  # a late label of day 5 changes its window: judged again, past the cooldown
        predictions([("c5", "2026-01-05T11:00:00Z", 0.95)]), str(root / "predictions" / "run6.parquet")
    )
    write_dataset(labels([("c5", "2026-01-05T11:00:00Z", 0)]), str(root / "labels" / "b8.csv"))
    run(NOW + 3 * 86_400 + 60, "r7")
    assert fired == [True, False, False, False, False, False, True]


def test_a_retry_of_the_check_that_fired_gets_the_same_decision(root: Path) -> None:
    policy = QualityPolicy("roc_auc", min_value=0.8, min_labels=3)
    first = run_quality_check(spec(root), policy, CHAMPION, ObjectStore(), now=NOW, claimant="dag/run/task/-1")
    retry = run_quality_check(spec(root), policy, CHAMPION, ObjectStore(), now=NOW + 5, claimant="dag/run/task/-1")
    other = run_quality_check(spec(root), policy, CHAMPION, ObjectStore(), now=NOW + 6, claimant="dag/run2/task/-1")
    assert (first.fired, retry.fired, other.fired) == (True, True, False)
    assert retry.result["episode"].startswith("decay episode started (decided again")
    state = EpisodeStateFile(str(root / "quality" / "episodes.json")).load()
    assert state.reference == "1" and len(state.fired_at) == 1


def test_a_new_champion_is_judged_on_its_own_predictions(root: Path) -> None:
    policy = QualityPolicy("roc_auc", min_value=0.6, min_labels=3)
    new = Champion("churn", "2", "run-2", "binary", "churned", "roc_auc", 0.9)
    outcome = run_quality_check(spec(root), policy, new, ObjectStore(), now=NOW)
    assert outcome.result["version"] == "2" and outcome.result["value"] is None and not outcome.fired
    assert "no window of version 2 has 3 labels" in outcome.result["reason"]
    assert {w["verdict"] for w in outcome.result["windows"]} == {None}  # version 1's rows: kept, not judged


def test_lookback_recomputes_only_recent_windows(root: Path) -> None:
    policy = QualityPolicy("roc_auc", min_value=0.6, min_labels=3)
    run_quality_check(spec(root), policy, CHAMPION, ObjectStore(), now=NOW)
    late_labels(root)
    outcome = run_quality_check(
        spec(root, lookback="1D"), policy, CHAMPION, ObjectStore(), now=pd.Timestamp("2026-01-02T12:00:00Z").timestamp()
    )
    rows = by_window(outcome.series)
    assert [w["window_start"][:10] for w in outcome.result["windows"]] == ["2026-01-01", "2026-01-02"]
    outcome = run_quality_check(
        spec(root, lookback="6h"), policy, CHAMPION, ObjectStore(), now=pd.Timestamp("2026-01-02T12:00:00Z").timestamp()
    )
    assert [w["window_start"][:10] for w in outcome.result["windows"]] == ["2026-01-02"]
    assert rows["2026-01-01"]["roc_auc"] == 0.75


def test_no_predictions_and_bad_input_are_clear_errors(tmp_path: Path, root: Path) -> None:
    policy = QualityPolicy("roc_auc", min_value=0.6)
    with pytest.raises(NoPredictionsError, match="no predictions of 'churn'"):
        run_quality_check(spec(tmp_path / "empty"), policy, CHAMPION, ObjectStore(), now=NOW)
    with pytest.raises(ValueError, match="entity column"):
        QualitySpec("churn", "p/", "l/", "churned", (), "s.parquet")
    with pytest.raises(ValueError, match="not a duration"):
        spec(root, window="a while")
    with pytest.raises(ValueError, match="positive duration"):
        spec(root, window="-1D")
    bad = spec(root)
    bad = QualitySpec(**{**bad.__dict__, "label_column": "label"})
    with pytest.raises(ValueError, match=r"b1\.csv has no column\(s\) \['label'\]"):
        run_quality_check(bad, policy, CHAMPION, ObjectStore(), now=NOW)
