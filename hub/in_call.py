"""What an in-call control acts on: the call's conference, the customer's live leg, the agent's leg.

A routed call is either a customer's leg (its conference is named after its CallSid) or a transfer row
that routes the same customer again (hub.transfers): that row has no leg of its own, its `parent_sid` is the
customer's original call. A callback's customer talks on the callback leg the hub placed. These helpers
hide those three shapes from the flows, and build the controls part of a console's snapshot.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Agent, Call, Leg, TimelineEntry
from routing.states import FINAL_STATUSES

LIVE_ROUTING = ("waiting", "offered", "connecting", "connected")


def root_call(session: Session, call: Call) -> Call:
    """The customer's original call row (the call itself unless it is a transfer row)."""
    if call.transfer_kind and call.parent_sid:
        root = session.scalar(select(Call).where(Call.sid == call.parent_sid))
        if root is not None:
            return root
    return call


def customer_leg_sid(session: Session, root: Call) -> str | None:
    """The CallSid the customer talks on now: the call itself, or a callback's live leg."""
    if not root.callback:
        return root.sid if root.status not in FINAL_STATUSES else None
    leg = session.scalar(select(Call).where(Call.parent_sid == root.sid, Call.leg == Leg.CALLBACK.value)
                         .order_by(Call.id.desc()).limit(1))
    return leg.sid if leg is not None and leg.status not in FINAL_STATUSES else None


def agent_leg(session: Session, call: Call, agent_id: int | None = None) -> Call | None:
    """The live leg the hub placed to the call's agent (or to `agent_id`) for this routed call."""
    who = agent_id if agent_id is not None else call.agent_id
    if who is None:
        return None
    return session.scalar(select(Call).where(
        Call.parent_sid == call.sid, Call.leg == Leg.AGENT.value, Call.agent_id == who,
        Call.status.not_in(FINAL_STATUSES)).order_by(Call.id.desc()).limit(1))


def supervisor_legs(session: Session, root: Call) -> list[Call]:
    """Supervisors' live legs in the customer's conference."""
    return list(session.scalars(select(Call).where(
        Call.parent_sid == root.sid, Call.leg == Leg.SUPERVISOR.value, Call.status.not_in(FINAL_STATUSES))
        .order_by(Call.id)))


def open_transfer(session: Session, root: Call) -> Call | None:
    """The transfer of this customer that routing is still working on, if any."""
    return session.scalar(select(Call).where(
        Call.parent_sid == root.sid, Call.transfer_kind.is_not(None), Call.leg == Leg.CUSTOMER.value,
        Call.routing_state.in_(LIVE_ROUTING)).order_by(Call.id.desc()).limit(1))


def call_notes(session: Session, call: Call) -> list[dict[str, Any]]:
    """Notes written on this call while it was live, oldest first (they are on the timeline too)."""
    if call.customer_id is None:
        return [{"text": line, "at": None, "agent": None} for line in (call.note or "").splitlines() if line]
    rows = session.scalars(select(TimelineEntry).where(TimelineEntry.call_id == call.id, TimelineEntry.kind == "note")
                           .order_by(TimelineEntry.occurred_at, TimelineEntry.id))
    return [{"text": row.details.get("note") or row.summary, "at": row.occurred_at.isoformat(),
             "agent": row.agent.name if row.agent else None} for row in rows]


def controls_view(session: Session, call: Call) -> dict[str, Any]:
    """The in-call part of a console snapshot: hold, mute, transfer, supervisors and notes."""
    root = root_call(session, call)
    mine = agent_leg(session, call)
    transfer = open_transfer(session, root)
    transfer_view = None
    if transfer is not None and transfer.sid != call.sid:
        target = session.get(Agent, transfer.agent_id) if transfer.agent_id else None
        transfer_view = {"call_sid": transfer.sid, "kind": transfer.transfer_kind, "state": transfer.routing_state,
                         "queue": transfer.queue.name if transfer.queue else None,
                         "agent": target.name if target else None}
    sender = session.get(Agent, call.transferred_by) if call.transferred_by else None
    return {
        "ready": root.conference_sid is not None and call.routing_state == "connected" and mine is not None,
        "on_hold": root.on_hold,
        "muted": bool(mine.muted) if mine is not None else False,
        "transfer": transfer_view,
        "transferred_from": sender.name if sender else None,
        "supervisors": [{"name": leg.agent.name if leg.agent else "Supervisor", "mode": leg.monitor_mode}
                        for leg in supervisor_legs(session, root)],
        "notes": call_notes(session, call),
    }
