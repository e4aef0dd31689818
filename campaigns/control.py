"""Start, pause, resume and stop a campaign: the status changes in one transaction, the effect is at once.

A running campaign's pacing loop reads the status at every step and before every dial, so a pause or stop
means no new call from the next step on; calls already ringing finish (their agents are reserved).
"""
from __future__ import annotations

from sqlalchemy import select

from campaigns.models import Campaign, CampaignAgent, CampaignStatus
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
