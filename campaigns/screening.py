"""Screening a campaign's lead: what the console shows (campaign, lead, script) and what the agent's
disposition and answers decide."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import compliance as c
from campaigns.admin import qualifies
from campaigns.dnc import add_opt_out
from campaigns.gate import campaign_rules
from campaigns.handoff import create_handoff
from campaigns.models import AttemptStatus, Campaign, DialAttempt, HandoffStatus, Lead, LeadStatus
from hub.errors import FlowError
from hub.models import Call


def after_disposition(lead: Lead) -> str:
    """The lead's status once its call is over: back on the list for a callback, otherwise done."""
    if lead.disposition == "callback" and lead.callback_at is not None:
        return LeadStatus.READY.value
    return LeadStatus.DONE.value


def screened(session: Session, call: Call, disposition: str, note: str, now: datetime,
             answers: Mapping[str, object] | None = None, callback: Mapping[str, object] | None = None,
             handoff_url: str | None = None, region: str = "US") -> int | None:
    """The agent's disposition of a campaign call decides the lead: final, or back for a callback; a
    do-not-call request suppresses the number everywhere at once. The screening answers are kept with the
    lead, and "qualified" needs answers that meet the script's rules; it hands the lead to field sales.

    Returns the id of a handoff to deliver once the caller has committed, if one was created.
    """
    attempt = session.scalar(select(DialAttempt).where(DialAttempt.call_sid == call.sid))
    if attempt is None:
        return None
    lead = session.get(Lead, attempt.lead_id)
    campaign = session.get(Campaign, attempt.campaign_id)
    script = campaign.script or {}
    keys = {q.get("key") for q in script.get("questions", [])}
    kept = {k: v for k, v in (answers or {}).items() if k in keys and v not in (None, "")}
    if disposition == "qualified" and not qualifies(script, kept):
        raise FlowError("the screening answers do not qualify this lead: check the script's questions", 400)
    if disposition == "callback":
        book_callback(lead, campaign, callback or {}, call.agent_id, now, region)
    lead.answers = kept
    lead.disposition = disposition
    if disposition == "do_not_call":
        add_opt_out(session, lead.phone, "asked not to be called (disposition)", now)
    if lead.status == LeadStatus.IN_CALL.value or attempt.status == AttemptStatus.ENDED.value:
        lead.status = after_disposition(lead)
    if disposition == "qualified":
        handoff = create_handoff(session, lead, campaign, call.agent_id, note, now, handoff_url)
        return handoff.id if handoff.status == HandoffStatus.PENDING.value else None
    return None


def lead_zone(lead: Lead, region: str, now: datetime) -> str | None:
    """The time zone a callback time is picked in: the first of the lead's candidate zones, if any."""
    facts = c.LeadFacts(phone=lead.phone, state=lead.state, zip_code=lead.postal_code, default_region=region)
    zones = c.may_dial_now(facts, c.CampaignRules(status="running", requires_registry=False), c.ContactHistory(),
                           now).zones
    return zones[0] if zones else None


def book_callback(lead: Lead, campaign: Campaign, callback: Mapping[str, object], agent_id: int | None,
                  now: datetime, region: str) -> None:
    """Book the lead's callback at a wall-clock time in the lead's time zone, inside its calling hours and
    the campaign's schedule; owned by the agent ("me") or the team."""
    zone = lead_zone(lead, region, now)
    if zone is None:
        raise FlowError("the lead's time zone is unknown, so no callback can be booked", 400)
    try:
        local = datetime.fromisoformat(str(callback.get("at") or ""))
    except ValueError:
        raise FlowError("pick the date and time to call back", 400) from None
    at = local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC) if local.tzinfo is None else local.astimezone(UTC)
    if at <= now:
        raise FlowError("pick a callback time in the future", 400)
    rules = replace(campaign_rules(campaign, None), status="running", requires_registry=False)
    facts = c.LeadFacts(phone=lead.phone, state=lead.state, zip_code=lead.postal_code, default_region=region)
    verdict = c.may_dial_now(facts, rules, c.ContactHistory(), at)
    refused = [skip for skip in verdict.reasons if skip.code in (
        c.SkipCode.OUTSIDE_WINDOW, c.SkipCode.OUTSIDE_SCHEDULE, c.SkipCode.UNKNOWN_ZONE)]
    if refused:
        raise FlowError(f"{local:%a %d %b %H:%M} ({zone}) is outside the lead's calling hours: "
                        f"{refused[0].detail}", 400)
    lead.callback_at = at
    lead.callback_agent_id = agent_id if callback.get("owner", "me") == "me" else None
    lead.next_check_at = at
    lead.skip_code = lead.skip_detail = None


def lead_view(session: Session, call: Call, now: datetime, region: str = "US") -> dict[str, object] | None:
    """What the console shows about a campaign call: the campaign, the lead and the screening script."""
    attempt = session.scalar(select(DialAttempt).where(DialAttempt.call_sid == call.sid))
    if attempt is None:
        return None
    lead = session.get(Lead, attempt.lead_id)
    campaign = session.get(Campaign, attempt.campaign_id)
    name = " ".join(part for part in (lead.first_name, lead.last_name) if part) or None
    return {
        "campaign": campaign.name,
        "lead": {"id": lead.id, "name": name, "phone": lead.phone, "state": lead.state,
                 "attempt": attempt.number, "custom_fields": lead.custom_fields or {}, "answers": lead.answers or {}},
        "script": {"questions": (campaign.script or {}).get("questions", [])},
        "zone": lead_zone(lead, region, now),
    }
