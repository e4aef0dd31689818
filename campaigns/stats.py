"""A campaign's live figures, shared by the API and the wallboard: lines in flight, dial rate, answer and
machine rates, the abandon ledger (today and rolling 30 days against the target), leads left and why the
others cannot be dialed now, and the funnel."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.ledger import abandon_budget
from campaigns.models import AttemptStatus, Campaign, CampaignAgent, DialAttempt, Handoff, Lead, LeadStatus
from hub.models import Agent

IN_FLIGHT = (AttemptStatus.INTENT.value, AttemptStatus.DIALED.value, AttemptStatus.ANSWERED.value)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def lead_reasons(session: Session, campaign_id: int, now: datetime) -> dict[str, int]:
    """Leads waiting in the list that may not be dialed now, counted by the gate's first reason."""
    rows = session.execute(
        select(Lead.skip_code, func.count()).where(
            Lead.campaign_id == campaign_id, Lead.status == LeadStatus.READY.value, Lead.skip_code.is_not(None),
            Lead.next_check_at > now)
        .group_by(Lead.skip_code))
    return {code: n for code, n in rows}


def campaign_summary(session: Session, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """Everything a supervisor reads about one campaign."""
    cid = campaign.id
    by_status = dict(session.execute(select(Lead.status, func.count()).where(Lead.campaign_id == cid)
                                     .group_by(Lead.status)).all())
    in_flight = session.scalar(select(func.count()).select_from(DialAttempt).where(
        DialAttempt.campaign_id == cid, DialAttempt.status.in_(IN_FLIGHT)))
    minute_ago = now - timedelta(minutes=1)
    dials_last_minute = session.scalar(select(func.count()).select_from(DialAttempt).where(
        DialAttempt.campaign_id == cid, DialAttempt.dialed_at >= minute_ago))
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    placed_today = session.scalar(select(func.count()).select_from(DialAttempt).where(
        DialAttempt.campaign_id == cid, DialAttempt.dialed_at >= today))
    answered_today = dict(session.execute(
        select(DialAttempt.answered_by, func.count()).where(
            DialAttempt.campaign_id == cid, DialAttempt.answered_at >= today)
        .group_by(DialAttempt.answered_by)).all())
    machines = sum(n for who, n in answered_today.items() if who and (who.startswith("machine") or who == "fax"))
    live = sum(answered_today.values()) - machines
    budget = abandon_budget(session, campaign, now)
    ready_now = session.scalar(select(func.count()).select_from(Lead).where(
        Lead.campaign_id == cid, Lead.status == LeadStatus.READY.value,
        (Lead.next_check_at.is_(None)) | (Lead.next_check_at <= now)))
    staffed, busy = session.execute(
        select(func.count(), func.count().filter(Agent.work.in_(("offered", "on_call", "wrap_up"))))
        .select_from(CampaignAgent).join(Agent, Agent.id == CampaignAgent.agent_id)
        .where(CampaignAgent.campaign_id == cid, Agent.presence != "offline")).one()
    return {
        "id": cid,
        "name": campaign.name,
        "status": campaign.status,
        "mode": campaign.mode,
        "lines_in_flight": in_flight,
        # occupancy now: the campaign's logged-in agents who are busy (offered, talking or wrapping up)
        "occupancy": {"busy": busy, "staffed": staffed, "rate": _rate(busy, staffed)},
        "dials_per_second": round(dials_last_minute / 60, 3),
        "dials_today": placed_today,
        "answer_rate_today": _rate(live, placed_today),
        "machine_rate_today": _rate(machines, placed_today),
        "abandon": {
            "target": campaign.abandon_target,
            "today": {"live": budget.live_today, "abandoned": budget.abandons_today,
                      "rate": _rate(budget.abandons_today, budget.live_today)},
            "rolling_30_days": {"live": budget.live_30d, "abandoned": budget.abandons_30d,
                                "rate": _rate(budget.abandons_30d, budget.live_30d)},
        },
        "leads": {
            "total": sum(by_status.values()),
            "by_status": by_status,
            "dialable_now": ready_now,
            "not_dialable_now": lead_reasons(session, cid, now),
        },
        "funnel": funnel(session, cid),
    }


def funnel(session: Session, campaign_id: int, *, list_name: str | None = None,
           agent_id: int | None = None) -> dict[str, Any]:
    """Leads -> attempted -> contacted (a person answered) -> qualified -> handed off -> won, for a campaign,
    one of its lists, or one agent's calls."""
    lead_filter = [Lead.campaign_id == campaign_id]
    if list_name is not None:
        lead_filter.append(Lead.list_name == list_name)
    attempt_filter = [DialAttempt.campaign_id == campaign_id, DialAttempt.lead_id.in_(
        select(Lead.id).where(*lead_filter))]
    if agent_id is not None:
        attempt_filter.append(DialAttempt.agent_id == agent_id)
        lead_filter.append(Lead.id.in_(select(DialAttempt.lead_id).where(DialAttempt.agent_id == agent_id)))
    leads = session.scalar(select(func.count()).select_from(Lead).where(*lead_filter))
    attempted = session.scalar(select(func.count(func.distinct(DialAttempt.lead_id))).where(
        *attempt_filter, DialAttempt.outcome.is_not(None)))
    contacted = session.scalar(select(func.count(func.distinct(DialAttempt.lead_id))).where(
        *attempt_filter, DialAttempt.outcome == "human"))
    qualified = session.scalar(select(func.count()).select_from(Lead).where(*lead_filter, Lead.disposition == "qualified"))
    handoffs = select(Handoff).join(Lead, Handoff.lead_id == Lead.id).where(*lead_filter).subquery()
    handed_off, won, revenue = session.execute(select(
        func.count(handoffs.c.id), func.count(handoffs.c.id).filter(handoffs.c.outcome == "won"),
        func.coalesce(func.sum(handoffs.c.amount).filter(handoffs.c.outcome == "won"), 0.0))).one()
    return {"leads": leads, "attempted": attempted, "contacted": contacted, "qualified": qualified,
            "handed_off": handed_off, "won": won, "revenue": round(float(revenue), 2)}


def costs(session: Session, campaign: Campaign, counts: dict[str, Any]) -> dict[str, Any]:
    """What the campaign cost and what each step of the funnel cost.

    Leads at `cost_per_lead`; telephony at `cost_per_minute` for every started minute of every answered
    call (Twilio bills whole minutes); agents at `cost_per_agent_hour` for the handle time of the campaign's
    calls (talk plus wrap-up), not for idle logged-in time.
    """
    rows = session.execute(select(DialAttempt.duration_s, DialAttempt.agent_joined_at, DialAttempt.ended_at).where(
        DialAttempt.campaign_id == campaign.id, DialAttempt.ended_at.is_not(None))).all()
    minutes = sum(-(-(d or 0) // 60) for d, _, _ in rows)
    handle_s = sum((ended - joined).total_seconds() + campaign.wrap_up_s for _, joined, ended in rows if joined)
    total = (counts["leads"] * campaign.cost_per_lead + minutes * campaign.cost_per_minute
             + handle_s / 3600 * campaign.cost_per_agent_hour)

    def per(n: int) -> float | None:
        return round(total / n, 2) if n else None

    return {"total": round(total, 2), "telephony_minutes": minutes, "agent_handle_hours": round(handle_s / 3600, 3),
            "per_lead": per(counts["leads"]), "per_contact": per(counts["contacted"]),
            "per_qualified": per(counts["qualified"]), "per_sale": per(counts["won"])}


def funnel_report(session: Session, campaign: Campaign) -> dict[str, Any]:
    """The campaign's funnel and costs, and the funnel of each list and each agent."""
    whole = funnel(session, campaign.id)
    lists = session.scalars(select(Lead.list_name).where(Lead.campaign_id == campaign.id).distinct())
    agents = session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(
        select(DialAttempt.agent_id).where(DialAttempt.campaign_id == campaign.id)))).all()
    return {
        "campaign": campaign.name,
        "funnel": whole,
        "costs": costs(session, campaign, whole),
        "by_list": {name: funnel(session, campaign.id, list_name=name) for name in lists if name},
        "by_agent": {name: funnel(session, campaign.id, agent_id=aid) for aid, name in agents},
    }
