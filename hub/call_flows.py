"""Flows driven by the carrier: an incoming call, status callbacks, conference events, the agent's leg.

Each flow loads, decides through the routing engine, persists and commits, then carries out commands.
Repeated, late and out-of-order callbacks are stored once and never move a leg backwards.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, lazyload

from campaigns.call_flows import agent_joined as campaign_agent_joined
from campaigns.call_flows import leg_ended as campaign_leg_ended
from campaigns.call_flows import link_status as campaign_link_status
from campaigns.pace_requests import pace_soon
from hub.call_events import record_once
from hub.customers import Caller, add_entry, identify_caller_briefly
from hub.db import lock_routing, transaction
from hub.effects import carry_out, ensure_leg
from hub.models import Call, Leg, Queue
from hub.phone import masked, try_e164
from hub.deferred_routing import ARRIVING, hang_up_can_wait
from hub.routing_store import StoredDecision, decide_and_store, lifetime_value, merge_decisions, queue_is_open
from hub.transfers import end_with_customer, resume_after_transfer
from hub.services import Services
from routing import engine
from routing.states import FINAL_STATUSES, advances

log = logging.getLogger(__name__)

AGENT_LEG_FAILURES = frozenset({"busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True)
class IncomingCall:
    """What the hub tells the caller: which queue they wait in (None: no queue can take the call)."""

    call_sid: str
    queue_name: str | None
    diverted: str | None = None  # "voicemail" or "callback" (an offer to call back)
    closed: bool = False  # diverted because the queue is closed
    route_later: bool = False  # in line once the answer is sent: hub.deferred_routing


@dataclass(frozen=True)
class AgentLegPlan:
    """Whether the agent's answered leg joins the caller, or hears that the caller left."""

    join: bool
    conference: str


def _timestamp(params: Mapping[str, str], fallback: datetime) -> datetime:
    raw = params.get("Timestamp")
    if raw:
        try:
            return parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            pass
    return fallback


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def _pick_queue(session: Session, to_number: str | None) -> Queue | None:
    # lazyload: the incoming webhook needs the queue's name and hours; its skills load only if asked for
    query = select(Queue).options(lazyload(Queue.skills))
    if to_number:
        queue = session.scalar(query.where(Queue.phone_number == to_number))
        if queue is not None:
            return queue
    return session.scalar(query.order_by(Queue.id))


def _preferred_agents(session: Session, customer: Caller | None) -> tuple[int, ...]:
    """The customer's owner, then the last agent who talked to them."""
    if customer is None:
        return ()
    preferred = [customer.owner_agent_id] if customer.owner_agent_id else []
    last = session.scalar(
        select(Call.agent_id)
        .where(Call.customer_id == customer.id, Call.leg == Leg.CUSTOMER.value, Call.connected_at.is_not(None))
        .order_by(Call.connected_at.desc())
        .limit(1)
    )
    if last is not None and last not in preferred:
        preferred.append(last)
    return tuple(preferred)


def receive_incoming_call(services: Services, params: Mapping[str, str]) -> IncomingCall:
    """Record a new inbound call and identify the caller; an open queue's call is put in line by
    `hub.deferred_routing` once the TwiML has gone out, a closed queue's is diverted here and now."""
    sid = params["CallSid"]
    region = services.settings.default_region
    now = services.clock()
    with transaction(services.sessions) as session:
        # No routing lock for an open queue: the rows written here (the caller's customer and this new call,
        # still "arriving") are ones no lock holder reads or waits for.
        existing = session.execute(select(Queue.name, Call.routing_outcome).select_from(Call)
                                   .outerjoin(Queue, Call.queue_id == Queue.id).where(Call.sid == sid)).first()
        if existing is not None:  # the carrier retried this request
            return IncomingCall(sid, existing.name, existing.routing_outcome)
        from_number = try_e164(params.get("From"), region)
        to_number = try_e164(params.get("To"), region)
        queue = _pick_queue(session, to_number)
        customer = identify_caller_briefly(session, from_number)
        is_open = queue is not None and queue_is_open(queue, now)
        preferred = _preferred_agents(session, customer) if queue is not None else ()
        call = Call(
            sid=sid, leg=Leg.CUSTOMER.value, direction="inbound", from_number=from_number or "withheld",
            to_number=to_number or params.get("To", ""), customer_id=customer.id if customer else None,
            queue_id=queue.id if queue else None, status=params.get("CallStatus") or "ringing",
            routing_state=ARRIVING if is_open else "waiting" if queue else "ended", created_at=now,
            tried_agent_ids=[], preferred_agent_ids=list(preferred),
        )
        session.add(call)
        session.flush()
        stored = None
        if queue is not None and not is_open:
            arrived = engine.CallArrived(sid, queue.name, customer.value_tier if customer else None, preferred,
                                         lifetime_value(session, customer.id if customer else None))
            stored = decide_and_store(session, arrived, now, services.routing_config)
    log.info("incoming call %s from %s to queue %s", sid, masked(from_number), queue.name if queue else "-")
    if queue is None:
        return IncomingCall(sid, None)
    if stored is None:
        return IncomingCall(sid, queue.name, route_later=True)
    carry_out(services, stored, answering=sid)
    divert = next((c for c in stored.commands if isinstance(c, engine.DivertCall) and c.sid == sid), None)
    if divert is None:
        return IncomingCall(sid, queue.name)
    return IncomingCall(sid, queue.name, divert.action.value, divert.after_hours)


def record_status(
    services: Services,
    params: Mapping[str, str],
    *,
    idempotency_token: str | None = None,
    parent_sid: str | None = None,
    agent_id: int | None = None,
    leg_kind: str | None = None,
) -> str:
    """Apply one call-progress callback. Returns 'applied', 'duplicate', 'stale', 'unknown' or 'deferred'.

    'deferred': a plain inbound caller's final status (`hub.deferred_routing.hang_up_can_wait`) is stored here
    without the routing lock, and routed after the answer by `hub.deferred_routing.route_deferred`; the
    webhook answers it `{"outcome": "deferred"}` (docs/routing.md, "Answer first, route next")."""
    sid, status = params["CallSid"], params.get("CallStatus", "")
    now = services.clock()
    stored: StoredDecision | None = None
    with transaction(services.sessions) as session:
        # one read of the call, with whether its hang-up can wait; its relations load only if used
        row = session.execute(select(Call, hang_up_can_wait()).options(lazyload("*"))
                              .where(Call.sid == sid)).first()
        call, can_wait = row if row is not None else (None, False)
        deferred = status in FINAL_STATUSES and bool(can_wait)
        if status in FINAL_STATUSES and not deferred:
            lock_routing(session)  # a final status routes: lock before touching rows, or processes deadlock
            # and read the call again under the lock: a routing flow, or this call's other final status, may
            # have changed it while this one waited (a plain read takes no row lock, so none is out of order)
            call = session.scalar(select(Call).where(Call.sid == sid).execution_options(populate_existing=True))
        if call is None and parent_sid and (agent_id is not None or leg_kind == Leg.CALLBACK.value):
            call = ensure_leg(session, sid, parent_sid, agent_id, status, params.get("To", ""),
                              params.get("From", ""), kind=leg_kind or Leg.AGENT.value)
        if call is None:
            log.warning("status callback for unknown call %s ignored", sid)
            return "unknown"
        sequence, occurred_at = _int(params.get("SequenceNumber")), _timestamp(params, now)
        if not record_once(session, source_sid=sid, kind="status", sequence_number=sequence,
                           idempotency_token=idempotency_token, name=status[:32], call_sid=sid,
                           payload=dict(params), occurred_at=occurred_at):
            return "duplicate"
        if not advances(call.status, status):
            return "stale"
        call.status = status
        call.last_sequence = sequence
        if status in FINAL_STATUSES:
            stored = _leg_ended(session, call, params, occurred_at or now, now, services.routing_config,
                                deferred=deferred)
    if stored is not None:
        carry_out(services, stored)
    return "deferred" if deferred else "applied"


def record_campaign_status(services: Services, attempt_id: int, params: Mapping[str, str], *,
                           idempotency_token: str | None = None) -> str:
    """Apply one call-progress callback of a campaign's call: tie it to its dial intent first (the REST answer
    that would have may have died with a worker), then as any other status callback."""
    campaign_id = campaign_link_status(services, attempt_id, params)
    if campaign_id is None:
        return "unknown"
    outcome = record_status(services, params, idempotency_token=idempotency_token)
    if outcome == "applied" and params.get("CallStatus") in FINAL_STATUSES:
        pace_soon(services, campaign_id)  # a line came free: the dialer may open another now
    return outcome


def _leg_ended(session: Session, call: Call, params: Mapping[str, str], ended_at: datetime, now: datetime,
               config: engine.RoutingConfig, deferred: bool = False):
    answered = call.connected_at is not None or (_int(params.get("CallDuration")) or 0) > 0
    call.ended_at = ended_at
    call.duration_s = _int(params.get("CallDuration")) or _int(params.get("Duration"))
    if call.duration_s is None:
        call.duration_s = max(0, int((ended_at - call.created_at).total_seconds()))
    if call.leg == Leg.AGENT.value:
        if call.status in AGENT_LEG_FAILURES and call.parent_sid and call.agent_id is not None:
            return decide_and_store(session, engine.AgentLegFailed(call.parent_sid, call.agent_id), now, config)
        return None
    if call.leg == Leg.SUPERVISOR.value:
        call.monitor_mode = None  # a supervisor left the conference: nothing for routing
        return None
    if call.leg == Leg.CALLBACK.value:
        return _callback_leg_ended(session, call, answered and call.status == "completed", now, config)
    if call.campaign_id is not None:
        return campaign_leg_ended(session, call, ended_at, now, config)
    if call.queue_id is None:
        return None
    if call.customer_id is not None:
        _put_call_on_timeline(session, call)
    if deferred:
        return None  # hub.deferred_routing routes the hang-up and ends the caller's transfers
    stored = decide_and_store(session, engine.CallHungUp(call.sid), now, config)
    return _with_transfers_ended(session, call, stored, ended_at, now, config)


def _with_transfers_ended(session: Session, root: Call, stored: StoredDecision | None, ended_at: datetime,
                          now: datetime, config: engine.RoutingConfig) -> StoredDecision | None:
    """The customer is gone: so are the transfers still routing them (hub.transfers)."""
    decisions = ([stored] if stored is not None else []) + end_with_customer(session, root, ended_at, now, config)
    return merge_decisions(decisions)


def _callback_leg_ended(session: Session, leg: Call, answered: bool, now: datetime, config: engine.RoutingConfig):
    """The customer's callback leg ended: the call is over (talked), or the customer did not answer."""
    parent = session.scalar(select(Call).where(Call.sid == leg.parent_sid))
    if parent is None:
        return None
    event = engine.CallHungUp(parent.sid) if answered else engine.CallbackUnanswered(parent.sid)
    stored = _with_transfers_ended(session, parent, decide_and_store(session, event, now, config), leg.ended_at or now,
                                   now, config)
    if parent.customer_id is not None:
        agent = parent.agent.name if parent.agent and answered else None
        summary = (f"Called back from {parent.queue.name if parent.queue else 'a queue'}"
                   + (f" by {agent}, {leg.duration_s} s" if agent else ": no answer"))
        add_entry(session, parent.customer_id, "callback", summary, now, call=parent,
                  agent_id=parent.agent_id if answered else None,
                  details={"outcome": "answered" if answered else "unanswered", "leg_sid": leg.sid})
    return stored


def _put_call_on_timeline(session: Session, call: Call) -> None:
    queue = call.queue.name if call.queue else "no queue"
    if call.routing_outcome in ("voicemail", "voicemail_after_hours"):
        why = " (closed)" if call.routing_outcome == "voicemail_after_hours" else ""
        summary = f"Inbound call to {queue}{why}, sent to voicemail after {call.duration_s} s"
        details = {"outcome": "voicemail", "queue": queue}
    elif call.connected_at is not None:
        agent = call.agent.name if call.agent else "an agent"
        talk = int((call.ended_at - call.connected_at).total_seconds()) if call.ended_at else None
        wait = int((call.connected_at - call.created_at).total_seconds())
        summary = f"Inbound call to {queue}, answered by {agent}, {call.duration_s} s"
        details = {"outcome": "answered", "wait_s": wait, "talk_s": talk, "queue": queue}
    else:
        summary = f"Inbound call to {queue}, abandoned after {call.duration_s} s"
        details = {"outcome": "abandoned", "wait_s": call.duration_s, "queue": queue}
    add_entry(session, call.customer_id, "call", summary, call.created_at, call=call,
              agent_id=call.agent_id if call.connected_at else None, details=details)


def record_conference_event(services: Services, params: Mapping[str, str]) -> str:
    """Apply one conference callback: an agent's leg joining the caller starts the conversation."""
    conference_sid = params.get("ConferenceSid", "")
    name = params.get("StatusCallbackEvent", "")
    leg_sid = params.get("CallSid")
    now = services.clock()
    stored: StoredDecision | None = None
    with transaction(services.sessions) as session:
        leg = None
        if name == "participant-join" and leg_sid:
            leg = session.execute(select(Call.parent_sid, Call.agent_id)
                                  .where(Call.sid == leg_sid, Call.leg == Leg.AGENT.value)).first()
            if leg is not None:
                lock_routing(session)  # an agent joining routes: lock before any row lock
        occurred_at = _timestamp(params, now)
        if not record_once(session, source_sid=conference_sid, kind="conference",
                           sequence_number=_int(params.get("SequenceNumber")), name=name[:32], call_sid=leg_sid,
                           payload=dict(params), occurred_at=occurred_at):
            return "duplicate"
        _remember_conference(session, params)
        if leg is None or leg.parent_sid is None or leg.agent_id is None:
            return "applied"
        stored = decide_and_store(session, engine.AgentJoined(leg.parent_sid, leg.agent_id), now,
                                  services.routing_config)
        parent = session.scalar(select(Call).where(Call.sid == leg.parent_sid))
        if parent is not None and parent.routing_state == "connected" and parent.connected_at is None:
            parent.connected_at = occurred_at or now
            if parent.campaign_id is not None:
                campaign_agent_joined(session, parent, now)
        transferred = parent.sid if parent is not None and parent.transfer_kind else None
    if stored is not None:
        carry_out(services, stored)
    if transferred is not None:
        resume_after_transfer(services, transferred)
    return "applied"


def _remember_conference(session: Session, params: Mapping[str, str]) -> None:
    """Keep the ConferenceSid on the call the conference is named after: in-call controls address it."""
    name, conference_sid = params.get("FriendlyName"), params.get("ConferenceSid")
    if not name or not conference_sid or params.get("StatusCallbackEvent") == "conference-end":
        return
    session.execute(update(Call).where(Call.sid == name, or_(Call.conference_sid.is_(None),
                                                              Call.conference_sid != conference_sid))
                    .values(conference_sid=conference_sid).execution_options(synchronize_session=False))


def plan_agent_leg(services: Services, params: Mapping[str, str], call_sid: str, agent_id: int) -> AgentLegPlan:
    """Decide what the agent's answered leg does: join the caller's conference, or hang up."""
    with transaction(services.sessions) as session:
        ensure_leg(session, params["CallSid"], call_sid, agent_id, params.get("CallStatus", "in-progress"),
                   params.get("To", ""), params.get("From", ""))
        call = session.scalar(select(Call).where(Call.sid == call_sid))
        join = (
            call is not None
            and call.routing_state in ("connecting", "connected")
            and call.agent_id == agent_id
        )
        # a transfer row has no leg: its agent joins the conference of the customer's call
        conference = call.parent_sid if call is not None and call.transfer_kind and call.parent_sid else call_sid
    return AgentLegPlan(join=join, conference=conference)


def record_voicemail(services: Services, call_sid: str, params: Mapping[str, str]) -> None:
    """Put a caller's voicemail on their timeline."""
    now = services.clock()
    with transaction(services.sessions) as session:
        call = session.scalar(select(Call).where(Call.sid == call_sid))
        if call is None or call.customer_id is None:
            return
        seconds = _int(params.get("RecordingDuration")) or 0
        add_entry(session, call.customer_id, "voicemail", f"Voicemail, {seconds} s", now, call=call,
                  details={"recording_url": params.get("RecordingUrl"), "recording_sid": params.get("RecordingSid"),
                           "duration_s": seconds})


def customer_time_zones(number: str | None) -> tuple[str, ...]:
    """The candidate time zones of a phone number ('Etc/Unknown' dropped: unknown means none)."""
    import phonenumbers
    from phonenumbers import timezone as number_zones

    if not number:
        return ()
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in number_zones.time_zones_for_number(parsed) if z != "Etc/Unknown")


def choose_callback(services: Services, call_sid: str, closed: bool) -> bool:
    """The caller asked to be called back: keep their place. Returns whether the callback is booked."""
    now = services.clock()
    with transaction(services.sessions) as session:
        lock_routing(session)
        call = session.scalar(select(Call).where(Call.sid == call_sid))
        if call is None or call.routing_state not in ("waiting", "offered"):
            return False
        zones = customer_time_zones(call.from_number)
        stored = decide_and_store(session, engine.CallbackRequested(call_sid, zones), now, services.routing_config)
        booked = call.callback
        if booked and call.customer_id is not None:
            add_entry(session, call.customer_id, "callback",
                      f"Asked to be called back from {call.queue.name if call.queue else 'a queue'}"
                      + (" (after hours)" if closed else "") + "; keeps their place in line", now, call=call,
                      details={"outcome": "requested"})
    carry_out(services, stored)
    return booked


def decline_after_hours_callback(services: Services, call_sid: str) -> None:
    """A caller offered a callback while the queue is closed said no: they get voicemail."""
    with transaction(services.sessions) as session:
        call = session.scalar(select(Call).where(Call.sid == call_sid))
        if call is not None and call.routing_outcome is None:
            call.routing_outcome = "voicemail_after_hours"


def plan_callback_leg(services: Services, params: Mapping[str, str], call_sid: str) -> AgentLegPlan:
    """Decide what the customer's answered callback leg does: join their agent, or hear an apology."""
    with transaction(services.sessions) as session:
        ensure_leg(session, params["CallSid"], call_sid, None, params.get("CallStatus", "in-progress"),
                   params.get("To", ""), params.get("From", ""), kind=Leg.CALLBACK.value)
        call = session.scalar(select(Call).where(Call.sid == call_sid))
        join = call is not None and call.routing_state in ("connecting", "connected")
    return AgentLegPlan(join=join, conference=call_sid)


def queue_name_of(services: Services, call_sid: str) -> str | None:
    with transaction(services.sessions) as session:
        call = session.scalar(select(Call).where(Call.sid == call_sid))
        return call.queue.name if call is not None and call.queue is not None else None
