"""Manual dial: an agent of a campaign types a number and the hub calls it, through the same compliance gate.

The number becomes (or already is) a lead of the campaign, so a manual call obeys everything an automatic one
does: the calling window in every candidate zone of the number, the DNC lists, the per-person cap across
campaigns, the campaign's schedule, retry delays and attempts, and the calls-per-second limit. It counts
toward the person's cap like any other attempt, and its wrap-up uses the campaign's dispositions.

A number typed for the first time is added on the list MANUAL_LIST. If the gate refuses it, the lead is kept
with the reason (every skipped dial records why) but closed, so the campaign's dialer never calls it behind
the agent's back; a later manual dial of the same number reopens it. A lead the campaign already had keeps
its place in the campaign: a refusal is recorded on it exactly as the dialer records one.
"""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import gate, preview
from campaigns.leads import add_lead, parse_lead
from campaigns.models import Campaign, CampaignAgent, CampaignStatus, Lead, LeadStatus
from hub.db import lock_routing, transaction
from hub.errors import FlowError
from hub.models import Agent
from hub.services import Services

log = logging.getLogger(__name__)

MANUAL_LIST = "manual dial"
_BUSY_WORDS = {LeadStatus.PREVIEW.value: "shown to another agent", LeadStatus.DIALING.value: "being dialed",
               LeadStatus.IN_CALL.value: "on a call", LeadStatus.DONE.value: "closed with a final outcome"}


def _only_manual(lead: Lead) -> bool:
    """A lead that exists only because an agent typed its number and that was never dialed."""
    return lead.list_name == MANUAL_LIST and lead.attempts == 0


def manual_dial(services: Services, agent_id: int, campaign_id: int, number: str) -> int:
    """Dial `number` for the agent in `campaign_id`; returns the dial attempt's id.

    Raises:
        FlowError: a bad number (400), not the agent's campaign (403), the agent is not free or the number is
        being worked already (409), or the gate refuses it now (409, with every reason in words).
    """
    now = services.clock()
    region = services.settings.default_region
    try:
        phone = parse_lead({"phone": number}, region)["phone"]
    except ValueError as exc:
        raise FlowError(str(exc), 400) from None
    refusal = None  # a refusal must commit (the lead and its reason) before it is raised
    with transaction(services.sessions) as session:
        lock_routing(session)
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or session.get(CampaignAgent, (campaign_id, agent_id)) is None:
            raise FlowError("you are not an agent of that campaign", 403)
        agent = session.get(Agent, agent_id)
        if agent.presence != "available" or agent.work != "idle":
            raise FlowError("you are not free: finish your current work first", 409)
        lead = session.scalar(select(Lead).where(Lead.campaign_id == campaign_id, Lead.phone == phone)
                              .with_for_update())
        if lead is None:
            lead = add_lead(session, campaign_id, {"phone": phone, "list_name": MANUAL_LIST}, region, now)
        elif lead.status == LeadStatus.DONE.value and _only_manual(lead):
            lead.status = LeadStatus.READY.value  # refused before: ask the gate again
        elif not (lead.status == LeadStatus.READY.value
                  or (lead.status == LeadStatus.PREVIEW.value and lead.preview_agent_id == agent_id)):
            raise FlowError(f"this number is already {_BUSY_WORDS.get(lead.status, lead.status)} in {campaign.name}",
                            409)
        for held in session.scalars(select(Lead).where(Lead.status == LeadStatus.PREVIEW.value,
                                                       Lead.preview_agent_id == agent_id, Lead.id != lead.id)):
            preview.release(held)  # the agent leaves the lead they were previewing for this one
        verdict = gate.judge(session, campaign, [lead], now, region)[lead.id]
        if verdict.allowed:
            gate.clear_skip(lead)
            lead.status = LeadStatus.PREVIEW.value
            lead.preview_agent_id = agent_id
            lead.next_check_at = now + preview.PREVIEW_HOLD
        else:
            gate.record_skip(lead, verdict, now)
            if _only_manual(lead):
                lead.status = LeadStatus.DONE.value
            refusal = "this number may not be called now: " + "; ".join(s.detail for s in verdict.reasons)
            log.info("manual dial by agent %s refused in campaign %s: %s", agent_id, campaign_id,
                     ",".join(s.code.value for s in verdict.reasons))
        lead_id = lead.id
    if refusal is not None:
        raise FlowError(refusal, 409)
    return preview.dial(services, agent_id, lead_id)


def campaigns_for(session: Session, agent_id: int) -> list[dict]:
    """The campaigns an agent may dial manually in: theirs that are running."""
    rows = session.execute(
        select(Campaign.id, Campaign.name).join(CampaignAgent, CampaignAgent.campaign_id == Campaign.id)
        .where(CampaignAgent.agent_id == agent_id, Campaign.status == CampaignStatus.RUNNING.value).order_by(Campaign.name))
    return [{"id": cid, "name": name} for cid, name in rows]
