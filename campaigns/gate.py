"""Load the facts the compliance gate needs for a batch of leads, ask it, and record every skip.

The gate itself (`campaigns.compliance`) is pure; this module is its database edge.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns import compliance as c
from campaigns.dnc import dnc_sources_for
from campaigns.models import AttemptStatus, Campaign, DialAttempt, DncSource, Lead, RegistryExtract

PERMANENT_RECHECK = timedelta(hours=1)  # a lead refused for a reason that needs new facts is looked at again


def campaign_rules(campaign: Campaign, registry_date: date | None) -> c.CampaignRules:
    """Translate a campaign's stored settings into the gate's rules."""
    sched: dict[str, Any] = campaign.schedule or {}
    schedule = None
    if sched:
        schedule = c.CampaignSchedule(
            zone=sched.get("timezone", "America/New_York"),
            days=frozenset(int(d) for d in sched.get("days", range(7))),
            hours=c.DailyWindow(time.fromisoformat(sched.get("start", "08:00")),
                                time.fromisoformat(sched.get("end", "21:00"))),
        )
    retry = dict(c.DEFAULT_RETRY_RULES)
    for outcome, rule in (campaign.retry_rules or {}).items():
        retry[outcome] = c.RetryRule(timedelta(seconds=int(rule.get("delay_s", 0))), int(rule.get("max_attempts", 1)))
    return c.CampaignRules(
        status=campaign.status, schedule=schedule, retry_rules=retry, max_attempts=campaign.max_attempts,
        requires_registry=campaign.requires_registry, registry_extract_date=registry_date,
    )


def latest_registry_date(session: Session) -> date | None:
    return session.scalar(select(func.max(RegistryExtract.extract_date)))


def judge(session: Session, campaign: Campaign, leads: list[Lead], now: datetime, region: str,
          rules: c.CampaignRules | None = None) -> dict[int, c.Verdict]:
    """Ask the gate about each lead, with its attempts, the person's attempts and DNC facts loaded in bulk."""
    if not leads:
        return {}
    rules = rules or campaign_rules(campaign, latest_registry_date(session))
    phones = sorted({lead.phone for lead in leads})
    dnc = dnc_sources_for(session, phones)
    since = now - rules.person_cap_period - timedelta(days=1)
    person: dict[str, list[datetime]] = {}
    for phone, at in session.execute(
        select(Lead.phone, DialAttempt.created_at).join(Lead, DialAttempt.lead_id == Lead.id)
        .where(Lead.phone.in_(phones), DialAttempt.created_at >= since,
               DialAttempt.status != AttemptStatus.NOT_PLACED.value)
    ):
        person.setdefault(phone, []).append(at)
    own: dict[int, list[c.Attempt]] = {}
    # a person answered: the agent's disposition is the outcome (a callback is retried, the rest are final)
    dispositions = {lead.id: lead.disposition for lead in leads}
    for lead_id, at, outcome in session.execute(
        select(DialAttempt.lead_id, DialAttempt.created_at, DialAttempt.outcome)
        .where(DialAttempt.lead_id.in_([lead.id for lead in leads]), DialAttempt.outcome.is_not(None))
        .order_by(DialAttempt.created_at)
    ):
        if outcome == "human":
            outcome = dispositions.get(lead_id) or outcome
        own.setdefault(lead_id, []).append(c.Attempt(at, outcome))
    verdicts = {}
    for lead in leads:
        sources = dnc.get(lead.phone, set())
        history = c.ContactHistory(
            lead_attempts=tuple(own.get(lead.id, ())), person_attempts=tuple(person.get(lead.phone, ())),
            on_internal_dnc=DncSource.INTERNAL.value in sources, on_registry_dnc=DncSource.REGISTRY.value in sources,
            has_complaint=DncSource.COMPLAINT.value in sources,
        )
        facts = c.LeadFacts(phone=lead.phone, state=lead.state, zip_code=lead.postal_code,
                            callback_at=lead.callback_at, default_region=region)
        verdicts[lead.id] = c.may_dial_now(facts, rules, history, now)
    return verdicts


def record_skip(lead: Lead, verdict: c.Verdict, now: datetime) -> None:
    """Keep why the gate refused the lead and when to look again (time-based reasons clear by themselves)."""
    first = verdict.reasons[0]
    lead.skip_code = first.code.value
    lead.skip_detail = "; ".join(skip.detail for skip in verdict.reasons)[:300]
    lead.next_check_at = verdict.next_allowed_at or now + PERMANENT_RECHECK


def clear_skip(lead: Lead) -> None:
    lead.skip_code = lead.skip_detail = None
    lead.next_check_at = None
