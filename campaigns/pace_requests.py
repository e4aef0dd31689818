"""Ask for a campaign's pacing step now, rather than at its next second: events that change what the dialer
should do (an agent or a line came free, a call was answered) step it as the pacing benchmark does.

Kept apart from campaigns.tasks so the call flows that raise those events can import it without a cycle.
"""
from __future__ import annotations

from sqlalchemy import select

from campaigns.models import Campaign, CampaignAgent, CampaignStatus
from hub.db import transaction
from hub.services import Services


def soon_key(campaign_id: int) -> str:
    return f"switchboard:pacing-soon:{campaign_id}"


def pace_soon(services: Services, campaign_id: int) -> None:
    """Plan a step of the campaign now rather than at the next second: an agent or a line just came free, or
    a call was answered. Any number of events before the step starts ask for one step."""
    if services.redis.set(soon_key(campaign_id), "1", nx=True, ex=5):
        services.jobs.now("campaigns.tasks.pace", campaign_id)


def pace_for_agents(services: Services, agent_ids: set[int]) -> None:
    """Agents came free: step the running campaigns they belong to (a preview campaign hands them a lead)."""
    if not agent_ids:
        return
    with transaction(services.sessions) as session:
        campaigns = set(session.scalars(
            select(CampaignAgent.campaign_id).join(Campaign, Campaign.id == CampaignAgent.campaign_id)
            .where(CampaignAgent.agent_id.in_(agent_ids), Campaign.status == CampaignStatus.RUNNING.value)))
    for campaign_id in sorted(campaigns):
        pace_soon(services, campaign_id)
