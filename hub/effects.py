"""Carry out the routing engine's commands after the decision is committed: timers, agent legs, pushes."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from campaigns.pace_requests import pace_for_agents
from hub.db import transaction
from hub.models import Agent, Call, Leg
from hub.routing_store import StoredDecision, decide_and_store
from hub.services import Services
from hub.board_feed import mark_board_dirty
from hub.snapshots import agent_state
from hub.telephony import TelephonyError
from routing.states import FINAL_STATUSES
from routing import engine

log = logging.getLogger(__name__)


def route(services: Services, event: engine.Event, now: datetime | None = None) -> StoredDecision:
    """Run one event through routing in its own transaction, commit, then carry out the commands."""
    with transaction(services.sessions) as session:
        stored = decide_and_store(session, event, now or services.clock(), services.routing_config)
    carry_out(services, stored)
    return stored


def carry_out(services: Services, decision: StoredDecision, answering: str | None = None) -> None:
    """Schedule timers, place agent legs, divert calls and push the new state to the consoles concerned.

    `answering` is the call whose webhook is being answered right now: its diversion is done by the TwiML
    of that answer, not by redirecting the live call.
    """
    changed_agents = set(decision.changed_agents)
    for command in decision.commands:
        if isinstance(command, engine.SendOffer):
            services.jobs.at(command.expires_at, "hub.tasks.expire_offer", command.sid, command.agent_id,
                             command.expires_at.isoformat())
            log.info("offered call %s to agent %s (%s)", command.sid, command.agent_id, command.reason)
        elif isinstance(command, engine.WithdrawOffer):
            log.info("withdrew call %s from agent %s: %s", command.sid, command.agent_id, command.reason)
        elif isinstance(command, engine.StartWrapUp):
            services.jobs.at(command.until, "hub.tasks.end_wrap_up", command.agent_id, command.sid)
        elif isinstance(command, engine.DialAgent):
            dial_agent(services, command.agent_id, command.sid)
        elif isinstance(command, engine.DialCustomer):
            dial_customer(services, command.sid)
        elif isinstance(command, engine.EndAgentLeg):
            end_agent_legs(services, command.agent_id, command.sid)
        elif isinstance(command, engine.ScheduleTick):
            services.jobs.at(command.at, "hub.tasks.tick", command.sid,
                             job_id=f"tick-{command.sid}-{int(command.at.timestamp())}")
        elif isinstance(command, engine.DivertCall):
            log.info("diverted call %s to %s: %s", command.sid, command.action.value, command.reason)
            if command.sid != answering:
                path = "callback-offer" if command.action is engine.Divert.CALLBACK else "voicemail"
                closed = "&closed=1" if command.after_hours else ""
                _redirect(services, command.sid, f"/webhooks/voice/{path}?call={command.sid}{closed}")
    push(services, changed_agents)
    pace_for_agents(services, decision.freed_agents)  # their campaigns dial for them now, not next second


def _redirect(services: Services, sid: str, path: str) -> None:
    try:
        services.telephony.redirect(sid, services.telephony.url(path))
    except TelephonyError:
        log.exception("could not redirect call %s", sid)


def push(services: Services, agent_ids: set[int]) -> None:
    """Send fresh snapshots to the given agents' consoles, and have the wallboard refreshed."""
    now = services.clock()
    if agent_ids:
        with transaction(services.sessions) as session:
            states = {aid: agent_state(session, aid, now) for aid in agent_ids}
        for aid, state in states.items():
            services.notifier.to_agent(aid, "state", state)
    mark_board_dirty(services)


def dial_agent(services: Services, agent_id: int, call_sid: str) -> None:
    """Place the agent's leg into the caller's conference; on failure put the call back in line."""
    with transaction(services.sessions) as session:
        agent = session.get(Agent, agent_id)
        login = agent.login if agent else ""
    telephony = services.telephony
    query = f"?call={call_sid}&agent={agent_id}"
    try:
        placed = telephony.dial(
            to=f"client:{login}",
            from_=services.settings.caller_id,
            voice_url=telephony.url("/webhooks/voice/agent" + query),
            status_url=telephony.url("/webhooks/voice/status" + query),
        )
    except TelephonyError:
        log.exception("could not place the agent leg for call %s", call_sid)
        route(services, engine.AgentLegFailed(call_sid, agent_id))
        return
    with transaction(services.sessions) as session:
        ensure_leg(session, placed.sid, call_sid, agent_id, placed.status, f"client:{login}",
                   services.settings.caller_id)


def dial_customer(services: Services, call_sid: str) -> None:
    """Call the customer back into the conference their agent is joining."""
    with transaction(services.sessions) as session:
        call = session.query(Call).filter_by(sid=call_sid).one_or_none()
        number = call.from_number if call else None
        caller_id = (call.queue.phone_number if call and call.queue else None) or services.settings.caller_id
    telephony = services.telephony
    query = f"?call={call_sid}&leg=callback"
    try:
        placed = telephony.dial(to=number or "", from_=caller_id,
                                voice_url=telephony.url("/webhooks/voice/callback-leg" + query),
                                status_url=telephony.url("/webhooks/voice/status" + query), timeout=25)
    except TelephonyError:
        log.exception("could not place the callback of call %s", call_sid)
        route(services, engine.CallbackUnanswered(call_sid))
        return
    with transaction(services.sessions) as session:
        ensure_leg(session, placed.sid, call_sid, None, placed.status, number or "", caller_id, kind=Leg.CALLBACK.value)


def end_agent_legs(services: Services, agent_id: int, call_sid: str) -> None:
    """Hang up the agent's live legs of a call that will not happen."""
    with transaction(services.sessions) as session:
        legs = [leg.sid for leg in session.query(Call).filter_by(parent_sid=call_sid, leg=Leg.AGENT.value,
                                                                  agent_id=agent_id)
                if leg.status not in FINAL_STATUSES]
    for sid in legs:
        try:
            services.telephony.hang_up(sid)
        except TelephonyError:
            log.exception("could not hang up agent leg %s", sid)


def ensure_leg(
    session, sid: str, parent_sid: str, agent_id: int | None, status: str, to: str, from_: str,
    kind: str = Leg.AGENT.value,
) -> Call:
    """Return a leg the hub placed, creating its row if this is the first we hear of it (REST answer or callback)."""
    leg = session.query(Call).filter_by(sid=sid).one_or_none()
    if leg is not None:
        return leg
    parent = session.query(Call).filter_by(sid=parent_sid).one_or_none()
    leg = Call(
        sid=sid, leg=kind, parent_sid=parent_sid, direction="outbound-api", from_number=from_,
        to_number=to, agent_id=agent_id, status=status, queue_id=parent.queue_id if parent else None,
        customer_id=parent.customer_id if parent else None,
    )
    try:
        with session.begin_nested():
            session.add(leg)
    except IntegrityError:  # a callback for the same leg created it a moment ago
        leg = session.query(Call).filter_by(sid=sid).one()
    return leg
