"""Preview mode: the dialer holds the next lead for a free agent, who reads it, then dials or skips it.

Each pacing step of a preview campaign hands every free campaign agent (inbound callers keep their claim,
as in the other modes) the next lead the compliance gate allows, and takes back a lead whose agent is no
longer free or who let it sit for PREVIEW_HOLD. Dialing goes through the same intent, gate and
calls-per-second checks as the other modes, and the answered call goes to that agent first.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import gate
from campaigns.dialer import take_leads, write_intent, place
from campaigns.models import Campaign, Lead, LeadStatus
from campaigns.pacing import DialMode, PacingPlan
from campaigns.throttle import CallRate
from hub.customers import customer_card
from hub.db import lock_routing, transaction
from hub.errors import FlowError
from hub.models import Agent, Customer
from hub.routing_store import load_state
from hub.services import Services
from routing.blending import outbound_agents

PREVIEW_HOLD = timedelta(minutes=5)  # a lead shown to an agent who neither dials nor skips goes back after this
SKIPPED_FOR = timedelta(hours=1)  # a skipped lead is not shown again before this


def release(lead: Lead) -> None:
    lead.status = LeadStatus.READY.value
    lead.preview_agent_id = None
    lead.next_check_at = None


def hand_out(session: Session, campaign: Campaign, free: list[int], now: datetime, region: str) -> set[int]:
    """Give each free agent of the campaign a lead to preview; take back leads of agents who are not free.
    Returns the agents whose console changed."""
    changed: set[int] = set()
    holding: set[int] = set()
    for lead in session.scalars(select(Lead).where(Lead.campaign_id == campaign.id,
                                                   Lead.status == LeadStatus.PREVIEW.value)):
        if lead.preview_agent_id not in free or (lead.next_check_at is not None and lead.next_check_at <= now):
            if lead.preview_agent_id is not None:
                changed.add(lead.preview_agent_id)
            release(lead)
        else:
            holding.add(lead.preview_agent_id)
    waiting = [agent_id for agent_id in free if agent_id not in holding]
    if not waiting:
        return changed
    plan = PacingPlan(lines_covered=len(waiting), lines_ahead=0, effective_mode=DialMode.PREVIEW,
                      reason=f"{len(waiting)} agents waiting for a lead to preview")
    for agent_id, (lead, _) in zip(waiting, take_leads(session, campaign, plan, now, region)):
        lead.status = LeadStatus.PREVIEW.value
        lead.preview_agent_id = agent_id
        lead.next_check_at = now + PREVIEW_HOLD
        changed.add(agent_id)
    return changed


def _held_lead(session: Session, agent_id: int, lead_id: int) -> Lead:
    lead = session.get(Lead, lead_id, with_for_update=True)
    if lead is None or lead.status != LeadStatus.PREVIEW.value or lead.preview_agent_id != agent_id:
        raise FlowError("that lead is no longer yours to preview")
    return lead


def dial(services: Services, agent_id: int, lead_id: int) -> int:
    """The agent dials the lead they preview: the gate is asked again, then the call is placed."""
    now = services.clock()
    rate = CallRate(services.redis, services.settings.twilio_account_sid or "local", services.settings.dial_cps)
    refusal = None  # a lead that may not be dialed goes back to the list: that must commit before refusing
    with transaction(services.sessions) as session:
        lock_routing(session)
        lead = _held_lead(session, agent_id, lead_id)
        agent = session.get(Agent, agent_id)
        if agent.presence != "available" or agent.work != "idle":
            raise FlowError("you are not free: finish your current work first")
        campaign = session.get(Campaign, lead.campaign_id)
        verdict = gate.judge(session, campaign, [lead], now, services.settings.default_region)[lead.id]
        if not verdict.allowed:  # the campaign stopped, or the lead was opted out, left its window...
            release(lead)
            gate.record_skip(lead, verdict, now)
            refusal = "this lead may not be dialed now: " + "; ".join(s.detail for s in verdict.reasons)
        elif rate.take(1, now.timestamp()) < 1:
            raise FlowError("the account is at its calls-per-second limit: try again in a second", 429)
        else:
            lead.preview_agent_id = None
            attempt_id = write_intent(session, campaign, lead, True, now, agent_id=agent_id)
    if refusal is not None:
        raise FlowError(refusal)
    outcome = place(services, attempt_id)
    if outcome == "rejected":
        raise FlowError("the carrier refused the call; the lead is back on the list", 502)
    return attempt_id


def skip(services: Services, agent_id: int, lead_id: int) -> None:
    """The agent skips the lead they preview: it goes back to the list and is not shown again for a while."""
    now = services.clock()
    with transaction(services.sessions) as session:
        lead = _held_lead(session, agent_id, lead_id)
        release(lead)
        lead.next_check_at = now + SKIPPED_FOR
        lead.skip_detail = "skipped by an agent in preview"


def preview_view(session: Session, agent_id: int, now: datetime) -> dict[str, Any] | None:
    """The lead an agent previews, with its customer card, campaign and script; None when there is none."""
    lead = session.scalar(select(Lead).where(Lead.status == LeadStatus.PREVIEW.value,
                                             Lead.preview_agent_id == agent_id))
    if lead is None:
        return None
    campaign = session.get(Campaign, lead.campaign_id)
    name = " ".join(part for part in (lead.first_name, lead.last_name) if part) or None
    customer = session.get(Customer, lead.customer_id) if lead.customer_id else None
    card = customer_card(session, customer, lead.phone, now)
    if customer is None:
        card.update(name=name or "New lead", custom_fields=lead.custom_fields or {})
    return {
        "lead_id": lead.id,
        "campaign": campaign.name,
        "lead": {"name": name, "phone": lead.phone, "state": lead.state, "attempt": lead.attempts + 1,
                 "custom_fields": lead.custom_fields or {}},
        "script": {"questions": (campaign.script or {}).get("questions", [])},
        "customer": card,
        "expires_at": lead.next_check_at.isoformat() if lead.next_check_at else None,
    }


def step(services: Services, campaign_id: int) -> set[int]:
    """One pacing step of a preview campaign: hand out and take back leads; return the agents to push to."""
    now = services.clock()
    with transaction(services.sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status != "running" or campaign.mode != DialMode.PREVIEW.value:
            return set()
        members = {a.agent_id for a in campaign.agents}
        free = outbound_agents(load_state(session, now, services.routing_config), members, now)
        return hand_out(session, campaign, free, now, services.settings.default_region)
