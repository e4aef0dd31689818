"""State machines as tables: agent work state, routed-call state, and telephony call status.

Each table maps (state, trigger) to the next state. A pair missing from a table is illegal: `next_state`
raises `IllegalTransition` and the caller's state stays as it was. Telephony status is different: carriers
repeat and reorder callbacks, so a status that does not move a call forward is a no-op, not an error.
"""
from __future__ import annotations

from enum import StrEnum


class RoutingError(Exception):
    """Root of the routing engine's errors."""


class IllegalTransition(RoutingError):
    """A trigger does not apply to the current state."""

    def __init__(self, machine: str, state: str, trigger: str) -> None:
        super().__init__(f"{machine}: {trigger!r} is not allowed in state {state!r}")
        self.machine, self.state, self.trigger = machine, state, trigger


class Presence(StrEnum):
    AVAILABLE = "available"
    BREAK = "break"
    OFFLINE = "offline"


class Work(StrEnum):
    IDLE = "idle"
    OFFERED = "offered"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"


class CallState(StrEnum):
    WAITING = "waiting"  # in the hold loop, nobody offered
    OFFERED = "offered"  # one agent has an open offer
    CONNECTING = "connecting"  # the agent accepted; their leg is being placed
    CONNECTED = "connected"  # the agent joined the caller
    ENDED = "ended"  # the caller's leg is over (talked, or abandoned)


WORK_TRANSITIONS: dict[tuple[Work, str], Work] = {
    (Work.IDLE, "offer"): Work.OFFERED,
    (Work.IDLE, "connect_outbound"): Work.ON_CALL,  # a campaign's call answered by a person: no offer
    (Work.OFFERED, "accept"): Work.ON_CALL,
    (Work.OFFERED, "decline"): Work.IDLE,
    (Work.OFFERED, "expire"): Work.IDLE,
    (Work.OFFERED, "withdraw"): Work.IDLE,
    (Work.ON_CALL, "leg_failed"): Work.IDLE,
    (Work.ON_CALL, "withdraw"): Work.IDLE,  # caller hung up before the agent's leg connected
    (Work.ON_CALL, "end"): Work.WRAP_UP,
    (Work.WRAP_UP, "finish"): Work.IDLE,
}

CALL_TRANSITIONS: dict[tuple[CallState, str], CallState] = {
    (CallState.WAITING, "offer"): CallState.OFFERED,
    (CallState.OFFERED, "accept"): CallState.CONNECTING,
    (CallState.OFFERED, "decline"): CallState.WAITING,
    (CallState.OFFERED, "expire"): CallState.WAITING,
    (CallState.OFFERED, "withdraw"): CallState.WAITING,
    (CallState.CONNECTING, "leg_failed"): CallState.WAITING,
    (CallState.CONNECTING, "connect"): CallState.CONNECTED,
    (CallState.WAITING, "hang_up"): CallState.ENDED,
    (CallState.OFFERED, "hang_up"): CallState.ENDED,
    (CallState.CONNECTING, "hang_up"): CallState.ENDED,
    (CallState.CONNECTED, "hang_up"): CallState.ENDED,
}


def _step(table: dict, machine: str, state: str, trigger: str):
    try:
        return table[(state, trigger)]
    except KeyError:
        raise IllegalTransition(machine, state, trigger) from None


def next_work(state: Work, trigger: str) -> Work:
    """Return the agent's next work state.

    Raises:
        IllegalTransition: when `trigger` does not apply to `state`.
    """
    return _step(WORK_TRANSITIONS, "agent work", state, trigger)


def next_call_state(state: CallState, trigger: str) -> CallState:
    """Return the routed call's next state.

    Raises:
        IllegalTransition: when `trigger` does not apply to `state`.
    """
    return _step(CALL_TRANSITIONS, "call", state, trigger)


# Telephony status, as Twilio reports it. Rank orders progress; the final statuses share the top rank, so
# once a leg is final no later callback changes it, and an earlier status arriving late is ignored.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
_STATUS_RANK = {"queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2, "answered": 2}


def status_rank(status: str) -> int:
    """Return how far along a telephony status is (final statuses rank highest)."""
    return 3 if status in FINAL_STATUSES else _STATUS_RANK.get(status, -1)


def advances(current: str | None, reported: str) -> bool:
    """Say whether a reported telephony status moves a leg forward from `current`."""
    if reported not in FINAL_STATUSES and reported not in _STATUS_RANK:
        return False  # unknown value: record it, change nothing
    if current is None:
        return True
    if current in FINAL_STATUSES:
        return False
    return status_rank(reported) > status_rank(current)
