"""The abandon ledger: every call a person answered, with whether it was abandoned; the rates come from it."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Integer, func, select
from sqlalchemy.orm import Session

from campaigns.models import Campaign, DialAttempt
from campaigns.pacing import AbandonBudget


def answered_by_a_person():
    """Answered calls that count in the ledger: a person, or unknown (AMD off or undecided); not machines."""
    who = DialAttempt.answered_by
    return who.is_(None) | (who.not_like("machine%") & (who != "fax"))


def abandon_budget(session: Session, campaign: Campaign, now: datetime) -> AbandonBudget:
    """The abandon ledger's counts: live answers and abandons over the rolling 30 days and today (UTC)."""
    def counts(since: datetime) -> tuple[int, int]:
        live, abandons = session.execute(
            select(func.count(DialAttempt.id), func.coalesce(func.sum(func.cast(DialAttempt.abandoned, Integer)), 0))
            .where(DialAttempt.campaign_id == campaign.id, DialAttempt.answered_at >= since, answered_by_a_person())
        ).one()
        return int(live), int(abandons)

    live_30d, abandons_30d = counts(now - timedelta(days=30))
    live_today, abandons_today = counts(now.replace(hour=0, minute=0, second=0, microsecond=0))
    return AbandonBudget(live_30d, abandons_30d, live_today, abandons_today, campaign.abandon_target)
