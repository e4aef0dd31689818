"""Start, pause, resume and stop a campaign: the status changes in one transaction, the effect is at once.

A running campaign's pacing loop reads the status at every step and before every dial, so a pause or stop
means no new call from the next step on; calls already ringing finish (their agents are reserved).
"""
from __future__ import annotations

from sqlalchemy import select

from campaigns.admin import update_campaign
from campaigns.models import Campaign, CampaignAgent, CampaignStatus, Lead, LeadStatus
from campaigns.preview import release
from hub.db import transaction
from hub.effects import push
from hub.errors import FlowError
from hub.services import Services

# action -> (statuses it applies to, status it leads to)
TRANSITIONS = {
    "start": ({CampaignStatus.DRAFT, CampaignStatus.STOPPED}, CampaignStatus.RUNNING),
    "pause": ({CampaignStatus.RUNNING}, CampaignStatus.PAUSED),
    "resume": ({CampaignStatus.PAUSED}, CampaignStatus.RUNNING),
    "stop": ({CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.DRAFT}, CampaignStatus.STOPPED),
}


def change_status(services: Services, campaign_id: int, action: str) -> str:
    """Apply `action` to the campaign and return its new status; a running campaign's pacing starts now."""
    from campaigns.tasks import schedule_pace

    if action not in TRANSITIONS:
        raise FlowError(f"unknown action {action!r}: one of {', '.join(TRANSITIONS)}", 400)
    allowed, target = TRANSITIONS[action]
    now = services.clock()
    with transaction(services.sessions) as session:
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None:
            raise FlowError("no such campaign", 404)
        if CampaignStatus(campaign.status) not in allowed:
            raise FlowError(f"cannot {action} a campaign that is {campaign.status}", 409)
        campaign.status = target.value
        campaign.status_changed_at = now
        agents = set(session.scalars(select(CampaignAgent.agent_id).where(CampaignAgent.campaign_id == campaign_id)))
    if target is CampaignStatus.RUNNING:
        schedule_pace(services, campaign_id, now)
    push(services, agents)  # their consoles offer manual dial only in running campaigns; the wallboard shows it
    return target.value


def change_mode(services: Services, campaign_id: int, mode: str) -> str:
    """Switch a campaign's dial mode (preview, progressive, predictive); the next pacing step uses it.

    Leaving preview mode takes back the leads shown to agents, so none stays held by a mode that no longer
    hands leads out. A refused mode changes nothing (CampaignError, 400)."""
    with transaction(services.sessions) as session:
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None:
            raise FlowError("no such campaign", 404)
        was = campaign.mode
        update_campaign(session, campaign, {"mode": mode}, services.settings.default_region)
        agents = set(session.scalars(select(CampaignAgent.agent_id).where(CampaignAgent.campaign_id == campaign_id)))
        if was == "preview" and mode != "preview":
            for lead in session.scalars(select(Lead).where(Lead.campaign_id == campaign_id,
                                                           Lead.status == LeadStatus.PREVIEW.value)):
                release(lead)
    push(services, agents)
    return mode
