"""The QueueOverload alert state machine of the operator contract (pure, event-time only).

Per (checkpoint, direction, severity): inactive -> pending (wait >= threshold at t0) ->
firing (still >= threshold and t - t0 >= for) -> resolved (wait < threshold * resolve_ratio).
A pending alert is dropped at the first event with wait < threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("warning", "critical")


@dataclass(slots=True)
class AlertState:
    pending_since: float | None = None
    fired_at: float | None = None

    @property
    def firing(self) -> bool:
        return self.fired_at is not None


@dataclass(frozen=True, slots=True)
class Transition:
    status: str  # "firing" | "resolved"
    starts_at: float
    fired_at: float
    ends_at: float | None


def step(
    state: AlertState,
    t: float,
    wait: float,
    threshold: float,
    for_seconds: float,
    resolve_ratio: float,
) -> Transition | None:
    """Advance one alert by one event at event time `t`; return the transition it causes, if any."""
    if state.fired_at is not None:
        if wait < threshold * resolve_ratio:
            started, fired = state.pending_since, state.fired_at
            state.pending_since = state.fired_at = None
            return Transition("resolved", started if started is not None else fired, fired, t)
        return None
    if wait < threshold:
        state.pending_since = None
        return None
    if state.pending_since is None:
        state.pending_since = t
    if t - state.pending_since >= for_seconds:
        state.fired_at = t
        return Transition("firing", state.pending_since, t, None)
    return None
