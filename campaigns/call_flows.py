"""What happens to a campaign's call after it is placed: answered, machine, agent joined, ended.

Every answered call by a person is a line in the abandon ledger (`DialAttempt`): ring time, answered-by,
seconds to an agent, abandoned, and whether the recorded message played.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.dialer import attach_call, load_stats, save_stats
from campaigns.models import AttemptStatus, Campaign, DialAttempt, Lead, LeadStatus
from campaigns.pace_requests import pace_soon
from campaigns.pacing import DialOutcome, record_dial, record_handle
from campaigns.screening import after_disposition
from hub.customers import add_entry
from hub.db import lock_routing, transaction
from hub.effects import carry_out
from hub.models import Call
from hub.routing_store import StoredDecision, campaign_queue, decide_and_store
from hub.services import Services
from routing import engine

log = logging.getLogger(__name__)

CONNECT_LIMIT_S = 2.0  # a person who answered must reach an agent within this, or the call is abandoned
FINAL_OUTCOMES = {"busy": "busy", "no-answer": "no_answer", "failed": "failed", "canceled": "no_answer"}


@dataclass(frozen=True)
class AnswerPlan:
    action: str  # connect | abandon | machine | gone
    call_sid: str
    message: str = ""


def _is_machine(answered_by: str | None) -> bool:
    return bool(answered_by) and (answered_by.startswith("machine") or answered_by == "fax")


def _machine_words(campaign: Campaign) -> str:
    """What a machine hears: the campaign's message when its machine action is to leave one, else nothing."""
    return (campaign.machine_message or "") if campaign.machine_action == "message" else ""


def answer(services: Services, attempt_id: int, params: Mapping[str, str]) -> AnswerPlan:
    """A campaign's call was answered: connect a reserved agent, or abandon it with the recorded message."""
    sid = params["CallSid"]
    now = services.clock()
    stored: StoredDecision | None = None
    with transaction(services.sessions) as session:
        lock_routing(session)
        attempt = session.get(DialAttempt, attempt_id)
        if attempt is None:
            return AnswerPlan("gone", sid)
        if attempt.call_sid not in (None, sid):
            return AnswerPlan("gone", sid)  # a crossed webhook: this attempt belongs to another call
        campaign = session.get(Campaign, attempt.campaign_id)
        attach_call(session, attempt, sid, "in-progress", now)
        if attempt.status == AttemptStatus.ANSWERED.value or attempt.status == AttemptStatus.ENDED.value:
            # the carrier repeated the answer webhook: say the same thing again
            if attempt.abandoned:
                return AnswerPlan("abandon", sid, campaign.abandon_message)
            if _is_machine(attempt.answered_by):
                return AnswerPlan("machine", sid, _machine_words(campaign))
            return AnswerPlan("connect", sid)
        attempt.status = AttemptStatus.ANSWERED.value
        attempt.answered_at = now
        attempt.answered_by = params.get("AnsweredBy") or None
        attempt.ring_s = (now - attempt.created_at).total_seconds()
        if _is_machine(attempt.answered_by):
            return AnswerPlan("machine", sid, _machine_words(campaign))
        lead = session.get(Lead, attempt.lead_id)
        members = frozenset(a.agent_id for a in campaign.agents)
        # the agent who dialed it from a preview, or who owns its callback, if free
        preferred = tuple(x for x in (attempt.agent_id, lead.callback_agent_id) if x)
        stored = decide_and_store(session, engine.OutboundAnswered(sid, campaign_queue(campaign.id), members, preferred),
                                  now, services.routing_config)
        call = session.scalar(select(Call).where(Call.sid == sid))
        if any(isinstance(c, engine.AbandonOutbound) for c in stored.commands):
            attempt.abandoned = True
            attempt.message_played = True
            call.routing_outcome = "abandoned"
            plan = AnswerPlan("abandon", sid, campaign.abandon_message)
        else:
            attempt.agent_id = call.agent_id
            lead.status = LeadStatus.IN_CALL.value
            plan = AnswerPlan("connect", sid)
        campaign_id = campaign.id
    carry_out(services, stored, answering=sid)
    pace_soon(services, campaign_id)  # a line stopped ringing and may have taken an agent: plan again now
    return plan


def machine_detected(services: Services, attempt_id: int, params: Mapping[str, str]) -> str:
    """Asynchronous AMD's verdict: a machine frees the agent and gets the campaign's machine action."""
    answered_by = params.get("AnsweredBy", "")
    now = services.clock()
    stored = None
    with transaction(services.sessions) as session:
        lock_routing(session)
        attempt = session.get(DialAttempt, attempt_id)
        if attempt is None or attempt.call_sid != params.get("CallSid"):
            return "unknown"
        if attempt.answered_by and attempt.answered_by != "unknown":
            return "duplicate"
        attempt.answered_by = answered_by or "unknown"
        if not _is_machine(answered_by):
            return "human"
        campaign = session.get(Campaign, attempt.campaign_id)
        stored = decide_and_store(session, engine.OutboundMachine(attempt.call_sid), now, services.routing_config)
        attempt.agent_id = None
        lead = session.get(Lead, attempt.lead_id)
        if lead.status == LeadStatus.IN_CALL.value:
            lead.status = LeadStatus.DIALING.value  # settled by the call's final status
        leave_message = campaign.machine_action == "message" and bool(campaign.machine_message)
        sid = attempt.call_sid
    carry_out(services, stored)
    path = f"/webhooks/outbound/machine?attempt={attempt_id}" if leave_message else None
    try:
        if path:
            services.telephony.redirect(sid, services.telephony.url(path))
        else:
            services.telephony.hang_up(sid)
    except Exception:  # noqa: BLE001 - the call may have ended meanwhile; its final status settles it
        log.warning("could not apply the machine action to call %s", sid)
    return "machine"


def agent_joined(session: Session, call: Call, at: datetime) -> None:
    """The agent's leg joined a campaign call: book the seconds it took (over 2 s counts as abandoned)."""
    attempt = session.scalar(select(DialAttempt).where(DialAttempt.call_sid == call.sid))
    if attempt is None or attempt.agent_joined_at is not None or attempt.answered_at is None:
        return
    attempt.agent_joined_at = at
    attempt.seconds_to_agent = max(0.0, (at - attempt.answered_at).total_seconds())
    if attempt.seconds_to_agent > CONNECT_LIMIT_S:
        attempt.abandoned = True  # booked even though an agent came: the person waited too long


def leg_ended(session: Session, call: Call, ended_at: datetime, now: datetime,
              config: engine.RoutingConfig) -> StoredDecision | None:
    """A campaign call's final status: settle the attempt, the lead's retry, the stats and the timeline."""
    stored = None
    if call.routing_state in ("connecting", "connected"):
        stored = decide_and_store(session, engine.CallHungUp(call.sid), now, config)
    attempt = session.scalar(select(DialAttempt).where(DialAttempt.call_sid == call.sid))
    if attempt is None or attempt.status == AttemptStatus.ENDED.value:
        return stored
    campaign = session.get(Campaign, attempt.campaign_id)
    lead = session.get(Lead, attempt.lead_id)
    attempt.ended_at = ended_at
    attempt.duration_s = call.duration_s
    stats = load_stats(campaign)
    if attempt.answered_at is not None and _is_machine(attempt.answered_by):
        outcome = "machine"
        stats = record_dial(stats, DialOutcome.MACHINE, attempt.ring_s or 0.0)
    elif attempt.answered_at is not None:
        outcome = "abandoned" if attempt.abandoned and attempt.agent_joined_at is None else "human"
        stats = record_dial(stats, DialOutcome.LIVE, attempt.ring_s or 0.0)
        if attempt.agent_joined_at is not None:
            stats = record_handle(stats, (ended_at - attempt.agent_joined_at).total_seconds() + campaign.wrap_up_s)
    else:
        outcome = FINAL_OUTCOMES.get(call.status, "failed")
        stats = record_dial(stats, DialOutcome.FAILED, (ended_at - attempt.created_at).total_seconds())
    save_stats(campaign, stats)
    attempt.status = AttemptStatus.ENDED.value
    attempt.outcome = outcome
    lead.last_outcome = outcome
    if outcome == "human":
        lead.status = after_disposition(lead)
    else:
        lead.status = LeadStatus.READY.value
        rule = (campaign.retry_rules or {}).get(outcome, {})
        lead.next_check_at = ended_at + timedelta(seconds=int(rule.get("delay_s", 0)))
    if lead.customer_id is not None:
        summary = f"Outbound attempt {attempt.number} ({campaign.name}): {outcome.replace('_', ' ')}"
        add_entry(session, lead.customer_id, "outbound", summary, ended_at, call=call,
                  agent_id=attempt.agent_id, details={"campaign": campaign.name, "outcome": outcome,
                                                      "attempt": attempt.number})
    return stored


def link_status(services: Services, attempt_id: int, params: Mapping[str, str]) -> int | None:
    """Before a campaign call's status callback is applied, make sure its intent knows the call (the REST
    answer that would have told it may have been lost with a killed worker). Returns the attempt's campaign,
    or None when there is no such attempt for this call."""
    with transaction(services.sessions) as session:
        attempt = session.get(DialAttempt, attempt_id)
        if attempt is None:
            return None
        if attempt.call_sid not in (None, params["CallSid"]):
            return None  # a forged or crossed callback: the attempt belongs to another call
        attach_call(session, attempt, params["CallSid"], "queued", services.clock())
        return attempt.campaign_id


def machine_message(services: Services, attempt_id: int) -> str:
    with transaction(services.sessions) as session:
        attempt = session.get(DialAttempt, attempt_id)
        campaign = session.get(Campaign, attempt.campaign_id) if attempt else None
        return (campaign.machine_message or "") if campaign else ""
