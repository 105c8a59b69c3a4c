"""When a stream of verdicts (drift, or decayed live quality) should raise an event: once per episode, debounced
and rate-limited.

A *window* is the content id of the current data checked; a verdict on the window just judged is ignored,
and a window that already raised an event never raises another. An *episode* starts after ``debounce``
drifted windows in a row and ends after ``clear_after`` clean ones; it raises at most one event, as soon
as the cooldown since the last event has passed and the cap of events per period allows. A new reference
(a new champion) starts afresh, keeping the event history. The state is a small JSON document that can
live in a file or an object store, so it survives restarts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_mlops_provider.core.drift.spec import EpisodePolicy
from airflow_mlops_provider.core.io.storage import ObjectStore

STATE_VERSION = 1
#: How many reported windows are remembered, so that none is reported twice.
REMEMBERED_WINDOWS = 256


@dataclass(frozen=True)
class Decision:
    """The outcome of one verdict.

    :param fire: whether to raise an event now.
    :param reason: why, for the logs.
    """

    fire: bool
    reason: str


@dataclass
class EpisodeState:
    """What the policy remembers between verdicts.

    :param reference: id of the reference the windows were compared with.
    :param last_window: id of the last window judged.
    :param drift_streak: drifted windows in a row.
    :param clean_streak: clean windows in a row.
    :param in_episode: whether a drift episode is under way.
    :param episode_fired: whether this episode already raised its event.
    :param fired_at: epoch seconds of recent events (for the cooldown and the cap).
    :param fired_windows: ids of the last windows that raised an event.
    :param fired_by: the claimant of the check that raised the last event, if it named one.
    """

    reference: str | None = None
    last_window: str | None = None
    drift_streak: int = 0
    clean_streak: int = 0
    in_episode: bool = False
    episode_fired: bool = False
    fired_at: list[float] = field(default_factory=list)
    fired_windows: list[str] = field(default_factory=list)
    fired_by: str | None = None

    def is_new(self, reference: str, window: str) -> bool:
        """Tell whether ``window`` against ``reference`` has not been judged yet.

        :param reference: the reference's id.
        :param window: the window's id.
        """
        return (reference, window) != (self.reference, self.last_window)

    def observe(
        self,
        policy: EpisodePolicy,
        reference: str,
        window: str,
        drifted: bool,
        now: float,
        claimant: str | None = None,
        subject: str = "drift",
    ) -> Decision:
        """Record the verdict on a window and decide whether it raises an event.

        :param policy: the debounce, cooldown and cap.
        :param reference: the reference's id; a new one resets the episode.
        :param window: the window's id; a window already judged never fires, except for a retry of the
            claimant whose check fired for it last (killed before its event was emitted).
        :param drifted: the dataset-level verdict.
        :param now: the current time, epoch seconds.
        :param claimant: who asks, e.g. a task instance; ``None`` never repeats a decision.
        :param subject: what a verdict reports, for the reasons: ``drift``, or e.g. ``decay`` (of live quality).
        """
        if not self.is_new(reference, window):
            if claimant is not None and claimant == self.fired_by and self.fired_windows[-1:] == [window]:
                return Decision(True, f"{subject} episode started (decided again for a retry of the check that fired)")
            return Decision(False, f"window {window} already judged")
        if reference != self.reference:
            self.reference = reference
            self.drift_streak = self.clean_streak = 0
            self.in_episode = self.episode_fired = False
        self.last_window = window
        self.fired_at = [t for t in self.fired_at if now - t < max(policy.period_seconds, policy.cooldown_seconds)]
        if not drifted:
            self.drift_streak, self.clean_streak = 0, self.clean_streak + 1
            if self.in_episode and self.clean_streak >= policy.clear_after:
                self.in_episode = self.episode_fired = False
                return Decision(False, f"no {subject}; the {subject} episode ended")
            return Decision(False, f"no {subject}")
        self.drift_streak, self.clean_streak = self.drift_streak + 1, 0
        if not self.in_episode:
            if self.drift_streak < policy.debounce:
                return Decision(False, f"{subject}, debouncing ({self.drift_streak}/{policy.debounce} windows)")
            self.in_episode = True
        if self.episode_fired:
            return Decision(False, f"{subject}; this episode was already reported")
        if window in self.fired_windows:
            return Decision(False, f"{subject}; window {window} was already reported")
        if self.fired_at and (wait := self.fired_at[-1] + policy.cooldown_seconds - now) > 0:
            return Decision(False, f"{subject}; cooling down for {wait:.0f} s more")
        if policy.max_events is not None:
            recent = sum(1 for t in self.fired_at if now - t < policy.period_seconds)
            if recent >= policy.max_events:
                return Decision(
                    False, f"{subject}; cap of {policy.max_events} events per {policy.period_seconds:.0f} s"
                )
        self.episode_fired = True
        self.fired_by = claimant
        self.fired_at.append(now)
        self.fired_windows = [*self.fired_windows, window][-REMEMBERED_WINDOWS:]
        return Decision(True, f"{subject} episode started")

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-serializable data."""
        return {"version": STATE_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeState:
        """Rebuild the state from :meth:`to_dict` output.

        :param data: the stored state.
        """
        fields = {key: value for key, value in data.items() if key != "version"}
        lists = {name: list(data.get(name, [])) for name in ("fired_at", "fired_windows")}
        return cls(**fields | lists)


class EpisodeStateFile:
    """The state at a local path or ``s3://`` URI, or in memory when there is none.

    :param uri: where the JSON document lives; ``None`` keeps the state in this object only.
    :param store: the store to use for ``uri``.
    """

    def __init__(self, uri: str | None, store: ObjectStore | None = None) -> None:
        self.uri = uri
        self.store = store or ObjectStore()
        self._memory: dict[str, Any] | None = None

    def load(self) -> EpisodeState:
        """Read the state (a copy: changes count once saved); a missing document is a fresh state."""
        if self.uri is None:
            return EpisodeState() if self._memory is None else EpisodeState.from_dict(self._memory)
        try:
            return EpisodeState.from_dict(json.loads(self.store.read_bytes(self.uri)))
        except FileNotFoundError:
            return EpisodeState()

    def save(self, state: EpisodeState) -> None:
        """Write the state.

        :param state: the state to keep.
        """
        if self.uri is None:
            self._memory = state.to_dict()
            return
        self.store.write_bytes(self.uri, json.dumps(state.to_dict(), sort_keys=True).encode())
