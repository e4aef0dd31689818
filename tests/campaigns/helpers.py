"""Shared set-up for the dialer's end-to-end tests: numbers inside or outside their calling window right now,
a campaign with its agents and leads, and a hub whose carrier answers every call."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import timezone as number_timezone
from sqlalchemy import select

from campaigns.models import Campaign, CampaignAgent, DncEntry, Lead
from hub.db import transaction
from hub.models import Agent
from tests.stack import Stack

# numbers whose time zones phonenumbers knows, spread around the world
CANDIDATES = ["+12125550{:03d}", "+13125550{:03d}", "+13035550{:03d}", "+14155550{:03d}", "+19075550{:03d}",
              "+18085550{:03d}", "+4420794600{:02d}", "+6129374{:04d}", "+8131234{:04d}", "+9111234{:05d}"]
ALL_WEEK = {"timezone": "UTC", "days": list(range(7)), "start": "00:00", "end": "23:59"}


def _local_hours(number: str, now: datetime) -> list[float]:
    hours = []
    for zone in number_timezone.time_zones_for_number(phonenumbers.parse(number)):
        local = now.astimezone(ZoneInfo(zone))
        hours.append(local.hour + local.minute / 60)
    return hours


def numbers(inside: bool, count: int, now: datetime) -> list[str]:
    """Valid numbers whose every zone is well inside (or well outside) 08:00-21:00 for the next minutes."""
    for pattern in CANDIDATES:
        found = [pattern.format(i + 11) for i in range(count)]
        if not all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in found):
            continue
        hours = _local_hours(found[0], now)
        if inside and all(8.5 <= h < 20.5 for h in hours):
            return found
        if not inside and all(h < 7.5 or h >= 21.5 for h in hours):
            return found
    pytest.skip("no candidate zone fits right now")


def seed_campaign(sessions, agent_logins: list[str], leads: list[dict], dnc: list[str] = (), **settings) -> int:
    """A campaign dialing all week (UTC), with the given agents, leads and internal do-not-call numbers."""
    values = dict(name="Solar", caller_id="+14155550100", mode="progressive", requires_registry=False,
                  schedule=ALL_WEEK, abandon_message="This is Solar calling from 415 555 0100.", wrap_up_s=30)
    values.update(settings)
    with transaction(sessions) as session:
        campaign = Campaign(**values)
        session.add(campaign)
        session.flush()
        for agent in session.scalars(select(Agent).where(Agent.login.in_(agent_logins))):
            session.add(CampaignAgent(campaign_id=campaign.id, agent_id=agent.id))
        for lead in leads:
            session.add(Lead(campaign_id=campaign.id, **lead))
        for number in dnc:
            session.add(DncEntry(phone=number, source="internal", reason="asked"))
        return campaign.id


def answering_stack(processes, database_url, *, machines: float = 0.0, talk_s: float = 2.0, **settings) -> Stack:
    """A hub (web and worker processes to be started) whose carrier picks up every call after 1-2 s rings:
    a machine with probability `machines`, otherwise a person who talks for about `talk_s` seconds."""
    return Stack(processes, database_url, carrier={"pstn_answer_probability": 1.0, "machine_probability": machines,
                                                   "pstn_ring_seconds": (1.0, 2.0), "pstn_mean_talk": talk_s},
                 **settings)
