"""One event per drift episode: debounce, cooldown, cap, new references, and state that survives restarts."""

from __future__ import annotations

from pathlib import Path

from airflow_mlops_provider.core.drift.episodes import EpisodeState, EpisodeStateFile
from airflow_mlops_provider.core.drift.spec import EpisodePolicy

REF = "ref-1"


def _fires(state: EpisodeState, policy: EpisodePolicy, verdicts: list[tuple[str, bool, float]]) -> list[str]:
    """Feed (window, drifted, time) verdicts; return the windows that fired."""
    return [window for window, drifted, now in verdicts if state.observe(policy, REF, window, drifted, now).fire]


def test_no_drift_never_fires_and_drift_fires_once_per_episode() -> None:
    state, policy = EpisodeState(), EpisodePolicy()
    assert _fires(state, policy, [("w1", False, 0), ("w2", False, 1)]) == []
    # The same drifted window seen again, then more drifted windows of the same episode: one event.
    assert _fires(state, policy, [("w3", True, 2), ("w3", True, 3), ("w4", True, 4), ("w5", True, 5)]) == ["w3"]
    # The episode ends on a clean window; the next drift is a new episode.
    assert _fires(state, policy, [("w6", False, 6), ("w7", True, 7)]) == ["w7"]


def test_debounce_waits_for_consecutive_drifted_windows() -> None:
    state, policy = EpisodeState(), EpisodePolicy(debounce=2)
    assert _fires(state, policy, [("w1", True, 0), ("w2", False, 1), ("w3", True, 2), ("w4", True, 3)]) == ["w4"]


def test_cooldown_delays_the_next_episode_without_losing_it() -> None:
    state, policy = EpisodeState(), EpisodePolicy(cooldown_seconds=100)
    verdicts = [("w1", True, 0), ("w2", False, 10), ("w3", True, 20), ("w4", True, 90), ("w5", True, 101)]
    assert _fires(state, policy, verdicts) == ["w1", "w5"]
    assert state.observe(policy, REF, "w6", True, 500).reason == "drift; this episode was already reported"


def test_cap_limits_events_per_period() -> None:
    state, policy = EpisodeState(), EpisodePolicy(max_events=2, period_seconds=1000)
    episodes = [(f"w{i}", i % 2 == 0, float(i)) for i in range(7)]  # four episodes: drift, clean, drift...
    assert _fires(state, policy, episodes) == ["w0", "w2"]
    # The capped episode is still under way when the first event leaves the period: it fires, once.
    assert _fires(state, policy, [("w7", True, 1001), ("w8", True, 1002)]) == ["w7"]


def test_a_new_reference_starts_a_new_episode() -> None:
    state, policy = EpisodeState(), EpisodePolicy()
    assert state.observe(policy, REF, "w1", True, 0).fire
    assert not state.observe(policy, REF, "w2", True, 1).fire
    assert state.observe(policy, "ref-2", "w2", True, 2).fire  # a new champion, still drifting


def test_state_survives_a_restart(tmp_path: Path) -> None:
    uri = str(tmp_path / "state" / "drift.json")
    policy = EpisodePolicy()
    first = EpisodeStateFile(uri)
    state = first.load()
    assert state.observe(policy, REF, "w1", True, 0).fire
    first.save(state)

    restarted = EpisodeStateFile(uri).load()
    assert not restarted.is_new(REF, "w1")
    assert not restarted.observe(policy, REF, "w2", True, 1).fire  # same episode, already reported


def test_in_memory_state_changes_only_when_saved() -> None:
    states = EpisodeStateFile(None)
    state = states.load()
    state.observe(EpisodePolicy(), REF, "w1", True, 0)
    assert states.load().is_new(REF, "w1")
    states.save(state)
    assert not states.load().is_new(REF, "w1")


def test_a_reported_window_never_fires_again() -> None:
    state, policy = EpisodeState(), EpisodePolicy()
    assert _fires(state, policy, [("w1", True, 0), ("w2", False, 1), ("w1", True, 2), ("w3", True, 3)]) == ["w1", "w3"]
