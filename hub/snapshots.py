"""What consoles and the wallboard show: whole snapshots, so a reconnecting client simply re-renders."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.models import Campaign, CampaignStatus
from campaigns.preview import preview_view
from campaigns.screening import lead_view
from campaigns.stats import campaign_summary
from hub.customers import customer_card
from hub.models import BREAK_REASONS, CAMPAIGN_DISPOSITIONS, DISPOSITIONS, Agent, Call, Leg, Queue, RoutingTrace
from hub.routing_store import ACTIVE_CALL_STATES


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def agent_dict(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "login": agent.login,
        "name": agent.name,
        "role": agent.role,
        "team": agent.team,
        "skills": agent.skill_levels,
        "presence": agent.presence,
        "break_reason": agent.break_reason,
        "work": agent.work,
        "since": _iso(agent.state_since),
        "call_sid": agent.call_sid,
    }


def _call_view(session: Session, call: Call, now: datetime) -> dict[str, Any]:
    outbound = lead_view(session, call, now) if call.campaign_id else None
    card = customer_card(session, call.customer, call.to_number if outbound else call.from_number)
    if outbound and call.customer is None:
        card.update(name=outbound["lead"]["name"] or "New lead", custom_fields=outbound["lead"]["custom_fields"])
    return {
        "call_sid": call.sid,
        "queue": call.queue.name if call.queue else None,
        "callback": call.callback,
        "from": call.from_number,
        "connected_at": _iso(call.connected_at),
        "ended_at": _iso(call.ended_at),
        "wrap_up_until": _iso(call.wrap_up_until),
        "duration": call.duration_s,
        "disposition": call.disposition,
        "customer": card,
        "outbound": outbound,
    }


def calls_today(session: Session, agent_id: int, now: datetime) -> int:
    return session.scalar(
        select(func.count(Call.id)).where(
            Call.agent_id == agent_id, Call.leg == Leg.CUSTOMER.value, Call.connected_at >= _day_start(now)
        )
    ) or 0


def agent_state(session: Session, agent_id: int, now: datetime) -> dict[str, Any]:
    """Return everything an agent's console shows."""
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise LookupError(f"agent {agent_id} not found")
    offer = call = None
    current = session.scalar(select(Call).where(Call.sid == agent.call_sid)) if agent.call_sid else None
    if current is not None and agent.work == "offered":
        offer = {
            "call_sid": current.sid,
            "queue": current.queue.name if current.queue else None,
            "callback": current.callback,
            "expires_at": _iso(current.offer_expires_at),
            "customer": customer_card(session, current.customer, current.from_number),
        }
    elif current is not None:
        call = _call_view(session, current, now)
    data = agent_dict(agent)
    data["calls_today"] = calls_today(session, agent.id, now)
    return {
        "agent": data,
        "offer": offer,
        "call": call,
        "dispositions": list(CAMPAIGN_DISPOSITIONS if current is not None and current.campaign_id else DISPOSITIONS),
        "preview": preview_view(session, agent.id, now) if agent.work == "idle" and current is None else None,
        "break_reasons": list(BREAK_REASONS),
        "server_time": now.isoformat(),
    }


def _latest_reasons(session: Session, sids: list[str]) -> dict[str, str]:
    """The rule behind the latest routing decision about each call."""
    if not sids:
        return {}
    latest = (select(RoutingTrace.call_sid, func.max(RoutingTrace.id).label("id"))
              .where(RoutingTrace.call_sid.in_(sids)).group_by(RoutingTrace.call_sid).subquery())
    rows = session.execute(select(RoutingTrace.call_sid, RoutingTrace.rule).join(latest, RoutingTrace.id == latest.c.id))
    return {sid: rule for sid, rule in rows}


def board(session: Session, now: datetime) -> dict[str, Any]:
    """Return the supervisor wallboard: queues, agents and live calls."""
    agents = list(session.scalars(select(Agent).order_by(Agent.name)))
    live = list(
        session.scalars(
            select(Call).where(Call.leg == Leg.CUSTOMER.value, Call.routing_state.in_(ACTIVE_CALL_STATES))
            .order_by(Call.created_at)
        )
    )
    today = list(
        session.scalars(
            select(Call).where(Call.leg == Leg.CUSTOMER.value, Call.created_at >= _day_start(now),
                               Call.routing_state == "ended")
        )
    )
    by_sid = {c.sid: c for c in live}
    queues = []
    for queue in session.scalars(select(Queue).order_by(Queue.name)):
        waiting = [c for c in live if c.queue_id == queue.id and c.routing_state in ("waiting", "offered")]
        skilled = [a for a in agents if all(a.skill_levels.get(s, 0) >= lvl for s, lvl in queue.skill_levels.items())]
        ended = [c for c in today if c.queue_id == queue.id]
        answered = [c for c in ended if c.connected_at is not None]
        abandoned = [c for c in ended if c.connected_at is None and c.routing_outcome is None]
        overflowed = [c for c in ended if c.connected_at is None and c.routing_outcome == "voicemail"]
        closed = [c for c in ended if c.routing_outcome == "voicemail_after_hours"]
        target = timedelta(seconds=queue.service_level_s)
        in_target = [c for c in answered if c.connected_at - c.created_at <= target]
        # service level: answered in time over all calls offered to the queue while open
        offered_total = len(answered) + len(abandoned) + len(overflowed)
        queues.append({
            "name": queue.name,
            "waiting": len(waiting),
            "longest_wait_s": max((int((now - c.created_at).total_seconds()) for c in waiting), default=0),
            "agents_available": sum(1 for a in skilled if a.presence == "available" and a.work == "idle"),
            "agents_on_call": sum(1 for a in skilled if a.work in ("offered", "on_call")),
            "agents_wrap_up": sum(1 for a in skilled if a.work == "wrap_up"),
            "agents_break": sum(1 for a in skilled if a.presence == "break"),
            "answered_today": len(answered),
            "abandoned_today": len(abandoned),
            "overflowed_today": len(overflowed),
            "after_hours_today": len(closed),
            "service_level_today": (len(in_target) / offered_total) if offered_total else None,
        })
    agent_rows = []
    for a in agents:
        current = by_sid.get(a.call_sid) if a.call_sid else None
        row = agent_dict(a)
        row["customer_name"] = current.customer.name if current and current.customer else None
        row["calls_today"] = sum(1 for c in today if c.agent_id == a.id and c.connected_at is not None)
        agent_rows.append(row)
    reasons = _latest_reasons(session, [c.sid for c in live])
    campaign_rows = list(session.scalars(select(Campaign).order_by(Campaign.name)))
    campaign_names = {c.id: c.name for c in campaign_rows}
    calls = [{
        "call_sid": c.sid,
        "reason": reasons.get(c.sid),
        "queue": c.queue.name if c.queue else campaign_names.get(c.campaign_id),
        "campaign": campaign_names.get(c.campaign_id),
        "customer_name": c.customer.name if c.customer else "Withheld number",
        "state": c.routing_state,
        "agent": c.agent.name if c.agent else None,
        "since": _iso(c.created_at),
    } for c in live]
    campaigns = [campaign_summary(session, c, now) for c in campaign_rows if c.status != CampaignStatus.STOPPED.value]
    return {"queues": queues, "agents": agent_rows, "calls": calls, "campaigns": campaigns,
            "server_time": now.isoformat()}
