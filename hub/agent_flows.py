"""Flows driven by agents: presence, answering offers, hanging up, wrapping up."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select

from campaigns import manual, preview
from campaigns.screening import screened
from hub.consoles import console_closed, has_console
from hub.complaints import open_complaint
from hub.customers import add_entry
from hub.db import lock_routing, transaction
from hub.effects import carry_out, push, route
from hub.errors import FlowError
from hub.in_call import customer_leg_sid, root_call
from hub.models import BREAK_REASONS, CAMPAIGN_DISPOSITIONS, DISPOSITIONS, Agent, Call
from hub.routing_store import decide_and_store
from hub.scheduled_callbacks import book_callback, schedule
from hub.services import Services
from routing import engine
from routing.states import Presence, RoutingError

log = logging.getLogger(__name__)


def _decide(services: Services, event: engine.Event, now: datetime | None = None) -> None:
    try:
        route(services, event, now)
    except RoutingError as exc:
        raise FlowError(str(exc)) from None


def change_presence(services: Services, agent_id: int, presence: str, reason: str | None = None) -> None:
    """Set an agent available, on a break (with a reason) or offline."""
    try:
        value = Presence(presence)
    except ValueError:
        raise FlowError(f"unknown presence {presence!r}", 400) from None
    if value is Presence.BREAK and reason not in BREAK_REASONS:
        raise FlowError(f"a break needs a reason: one of {', '.join(BREAK_REASONS)}", 400)
    _decide(services, engine.PresenceChanged(agent_id, value, reason if value is Presence.BREAK else None))


def answer_offer(services: Services, agent_id: int, call_sid: str, accept: bool) -> None:
    """Accept or decline the call offered to an agent; an offer that has expired is refused."""
    now = services.clock()
    if not accept and _decline_warm_transfer(services, agent_id, call_sid, now):
        return
    event = engine.OfferAccepted(call_sid, agent_id) if accept else engine.OfferDeclined(call_sid, agent_id)
    try:
        _decide(services, event, now)
    except FlowError:
        push(services, {agent_id})  # the console may show a stale offer: send it the truth
        raise


def _decline_warm_transfer(services: Services, agent_id: int, call_sid: str, now: datetime) -> bool:
    """A warm transfer declined ends there (its sender still has the customer) instead of going round."""
    with transaction(services.sessions) as session:
        lock_routing(session)
        call = session.scalar(select(Call).where(Call.sid == call_sid))
        if call is None or call.transfer_kind != "warm" or call.routing_state != "offered" or call.agent_id != agent_id:
            return False
        call.routing_outcome, call.ended_at = "transfer_declined", now
        stored = decide_and_store(session, engine.CallHungUp(call_sid), now, services.routing_config)
    carry_out(services, stored)
    return True


def hang_up(services: Services, agent_id: int, call_sid: str) -> None:
    """End the agent's current call through the carrier; the status callback then starts wrap-up."""
    with transaction(services.sessions) as session:
        agent = session.get(Agent, agent_id)
        if agent is None or agent.call_sid != call_sid or agent.work != "on_call":
            raise FlowError("you are not on that call")
        call = session.scalar(select(Call).where(Call.sid == call_sid))
        # the customer's live leg: the call itself, a callback's leg, or the original call of a transfer
        leg = customer_leg_sid(session, root_call(session, call)) if call is not None else None
    if leg is not None:
        services.telephony.hang_up(leg)


def finish_wrap_up(services: Services, agent_id: int, call_sid: str, disposition: str, note: str = "",
                   answers: dict | None = None, callback: dict | None = None,
                   complaint: dict | None = None) -> None:
    """Record the call's disposition and note on the customer's timeline and end the agent's wrap-up.

    `complaint` ({"summary": ...}), or the "complaint" disposition, also opens a complaint for the customer.
    The "callback" disposition books the callback: a campaign lead's through its screening, an inbound call's
    in hub.scheduled_callbacks (routed by a job at the due time, scheduled once the booking is committed).
    """
    if disposition not in (*DISPOSITIONS, *CAMPAIGN_DISPOSITIONS):
        raise FlowError(f"choose a disposition: one of {', '.join(DISPOSITIONS)}", 400)
    note = (note or "").strip()[:2000]
    now = services.clock()
    with transaction(services.sessions) as session:
        call = session.scalar(select(Call).where(Call.sid == call_sid))
        if call is None or call.agent_id != agent_id or call.connected_at is None:
            raise FlowError("that call was not yours")
        allowed = CAMPAIGN_DISPOSITIONS if call.campaign_id else DISPOSITIONS
        if disposition not in allowed:
            raise FlowError(f"choose a disposition: one of {', '.join(allowed)}", 400)
        if call.routing_state != "ended":
            raise FlowError("the call is still in progress")
        if call.disposition is not None:
            raise FlowError("that call already has a disposition")
        call.disposition = disposition
        call.note = "\n".join(n for n in (call.note, note) if n) or None  # notes written during the call stay
        if call.customer_id is not None:
            summary = f"Disposition: {disposition}" + (f". {note[:200]}" if note else "")
            add_entry(session, call.customer_id, "disposition", summary, now, call=call, agent_id=agent_id,
                      details={"disposition": disposition, "note": note or None})
        if complaint is True or isinstance(complaint, dict) or disposition == "complaint":
            summary = complaint.get("summary") if isinstance(complaint, dict) else None
            open_complaint(session, call, agent_id, summary if isinstance(summary, str) and summary.strip() else note,
                           now, services.settings.default_region)
        booked = None
        if disposition == "callback" and not call.campaign_id:  # inbound: book it (campaign leads: screened)
            row = book_callback(session, call, agent_id, callback if isinstance(callback, dict) else {}, now,
                                services.routing_config.calling_window)
            booked = (row.id, row.due_at)
        handoff_id = None
        if call.campaign_id:
            handoff_id = screened(session, call, disposition, note, now,
                                  answers=answers if isinstance(answers, dict) else None,
                                  callback=callback if isinstance(callback, dict) else None,
                                  handoff_url=services.settings.handoff_url, region=services.settings.default_region)
    if handoff_id is not None:
        services.jobs.now("campaigns.tasks.send_handoff", handoff_id)
    if booked is not None:
        schedule(services, *booked)
    _decide(services, engine.WrapUpFinished(agent_id, call_sid), now)


def console_disconnected(services: Services, agent_id: int, sid: str) -> None:
    """A console closed: if the agent has no other, log them off after the grace period."""
    console_closed(services, agent_id, sid)
    if not has_console(services, agent_id):
        when = services.clock() + timedelta(seconds=services.settings.console_grace_s)
        services.jobs.at(when, "hub.tasks.log_off_if_gone", agent_id)


def log_off_if_gone(services: Services, agent_id: int) -> bool:
    """Log off an agent whose consoles are all gone; a break or call in progress ends first. Returns whether."""
    if has_console(services, agent_id):
        return False
    with transaction(services.sessions) as session:
        agent = session.get(Agent, agent_id)
        if agent is None or agent.presence == "offline" or agent.pending_presence == "offline":
            return False
    log.warning("agent %s has no console open: logging them off", agent_id)
    change_presence(services, agent_id, "offline")
    return True


def log_out(services: Services, agent_id: int, close_consoles: Callable[[int], None]) -> None:
    """Log an agent out, at their own request or a supervisor's: no more calls for them (a call in progress
    finishes first) and `close_consoles(agent_id)` (the web edge's: it reaches every web process) closes their
    open consoles. They may log in again.

    Raises:
        FlowError: they could not be set offline (no such agent); their consoles are closed all the same.
    """
    try:
        change_presence(services, agent_id, "offline")
    except FlowError:
        log.warning("could not set agent %s offline at logout", agent_id)
        raise
    finally:
        close_consoles(agent_id)


def dial_preview(services: Services, agent_id: int, lead_id: int) -> None:
    """The agent dials the lead they preview (preview mode); the answered call comes to them."""
    try:
        preview.dial(services, agent_id, lead_id)
    finally:
        push(services, {agent_id})


def dial_manual(services: Services, agent_id: int, campaign_id: int, number: str) -> None:
    """The agent dials a number they typed, for one of their campaigns, if the compliance gate allows it now."""
    try:
        manual.manual_dial(services, agent_id, campaign_id, number)
    finally:
        push(services, {agent_id})


def skip_preview(services: Services, agent_id: int, lead_id: int) -> None:
    """The agent skips the lead they preview; the next pacing step shows them another."""
    preview.skip(services, agent_id, lead_id)
    push(services, {agent_id})
