"""What consoles and the wallboard show: whole snapshots, so a reconnecting client simply re-renders."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from campaigns.models import Campaign, CampaignStatus
from campaigns.manual import campaigns_for
from campaigns.preview import preview_view
from campaigns.screening import lead_view
from campaigns.stats import campaign_summary
from crm.insights import BOARD_CACHE as CRM_PANEL
from hub import metrics
from hub.customers import customer_card
from hub.in_call import controls_view
from hub.models import BREAK_REASONS, CAMPAIGN_DISPOSITIONS, DISPOSITIONS, Agent, Call, Customer, Leg, Queue, RoutingTrace
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
    from hub.scheduled_callbacks import callback_zone  # it routes, and routing's effects push these snapshots

    outbound = lead_view(session, call, now) if call.campaign_id else None
    card = customer_card(session, call.customer, call.to_number if outbound else call.from_number, now)
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
        "callback_zone": None if outbound else callback_zone(call.from_number),  # an inbound callback's zone
        "controls": controls_view(session, call),  # hold, mute, transfer, notes (hub.in_call)
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
            "customer": customer_card(session, current.customer, current.from_number, now),
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
        "manual_dial_campaigns": campaigns_for(session, agent.id),
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


def _live_calls(session: Session) -> list[Row]:
    """The customer calls in progress, oldest first, with the names the board shows: plain columns (the board
    is rebuilt twice a second with hundreds of callers waiting; ORM calls would load their customers' phones,
    queues' skills and agents' skills too)."""
    return list(session.execute(
        select(Call.sid, Call.queue_id, Call.campaign_id, Call.routing_state, Call.created_at,
               Queue.name.label("queue_name"), Customer.name.label("customer_name"), Agent.name.label("agent_name"))
        .outerjoin(Queue, Call.queue_id == Queue.id)
        .outerjoin(Customer, Call.customer_id == Customer.id)
        .outerjoin(Agent, Call.agent_id == Agent.id)
        .where(Call.leg == Leg.CUSTOMER.value, Call.routing_state.in_(ACTIVE_CALL_STATES))
        .order_by(Call.created_at)
    ))


def board(session: Session, now: datetime) -> dict[str, Any]:
    """Return the supervisor wallboard: queues, agents, live calls, campaigns, today's charts and alerts, and the
    CRM panel (revenue by tier, Pareto curve, stages, cohorts; cached, see crm.insights.BoardCache)."""
    agents = list(session.scalars(select(Agent).order_by(Agent.name)))
    live = _live_calls(session)
    figures = metrics.wallboard(session, now, agents, live)
    by_sid = {c.sid: c for c in live}
    agent_rows = []
    for a in agents:
        current = by_sid.get(a.call_sid) if a.call_sid else None
        day = figures["agents"].get(a.id, {})
        row = agent_dict(a)
        row["customer_name"] = current.customer_name if current else None
        row["calls_today"] = day.get("answered", 0)
        row["aht_s"] = day.get("aht_s")
        agent_rows.append(row)
    reasons = _latest_reasons(session, [c.sid for c in live])
    campaign_rows = list(session.scalars(select(Campaign).order_by(Campaign.name)))
    campaign_names = {c.id: c.name for c in campaign_rows}
    calls = [{
        "call_sid": c.sid,
        "reason": reasons.get(c.sid),
        "queue": c.queue_name or campaign_names.get(c.campaign_id),
        "campaign": campaign_names.get(c.campaign_id),
        "customer_name": c.customer_name or "Withheld number",
        "state": c.routing_state,
        "agent": c.agent_name,
        "since": _iso(c.created_at),
    } for c in live]
    campaigns = [campaign_summary(session, c, now) for c in campaign_rows if c.status != CampaignStatus.STOPPED.value]
    return {"queues": figures["queues"], "agents": agent_rows, "calls": calls, "campaigns": campaigns,
            "day": figures["day"], "alerts": metrics.alerts(figures["queues"], campaigns),
            "thresholds": {"service_level_goal": metrics.SERVICE_LEVEL_GOAL, "alert_margin": metrics.ALERT_MARGIN},
            "crm": CRM_PANEL.figures(session, now), "server_time": now.isoformat()}
