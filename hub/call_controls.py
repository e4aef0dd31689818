"""In-call controls through the telephony port: hold, mute, notes, and supervisors in the conference.

Every call is a Twilio conference named after the customer's CallSid, so each control is a change to one
participant (`hold`, `muted`, `coaching`) or a new participant (a supervisor's softphone). An agent may act
only on the call they are talking on; a supervisor on any live call. Each flow checks that in the database,
then asks the carrier, then records what the carrier answered and pushes the agent's console. Repeating an
action sets the same value again, which the carrier accepts, so a retried action does no harm.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.customers import add_entry
from hub.db import transaction
from hub.effects import ensure_leg, push
from hub.errors import FlowError
from hub.in_call import agent_leg, customer_leg_sid, root_call, supervisor_legs
from hub.models import Agent, Call, Leg, Queue, Role
from hub.services import Services
from hub.telephony import TelephonyError

log = logging.getLogger(__name__)

MONITOR_MODES = ("listen", "whisper", "barge")
NOTE_LIMIT = 2000


@dataclass(frozen=True)
class Actor:
    """Who asks: an agent acts on their own call, a supervisor (or admin) on any."""

    id: int
    supervisor: bool


def live_call(session: Session, actor: Actor, call_sid: str, *, wrap_up_too: bool = False) -> Call:
    """Return the routed call `actor` may control, or refuse with a message a person can act on."""
    call = session.scalar(select(Call).where(Call.sid == call_sid, Call.leg == Leg.CUSTOMER.value))
    if call is None:
        raise FlowError("there is no such call", 404)
    if not actor.supervisor:
        agent = session.get(Agent, actor.id)
        works = ("on_call", "wrap_up") if wrap_up_too else ("on_call",)
        if agent is None or agent.call_sid != call_sid or agent.work not in works or call.agent_id != actor.id:
            raise FlowError("you are not on that call", 403)
    if wrap_up_too and call.routing_state == "ended" and call.disposition is None:
        return call
    if call.routing_state != "connected":
        raise FlowError("the call is not connected" if call.routing_state != "ended" else "the call is over")
    return call


def _conference(session: Session, call: Call) -> tuple[Call, str]:
    root = root_call(session, call)
    if root.conference_sid is None:
        raise FlowError("the call is still being connected; try again in a moment")
    return root, root.conference_sid


def _update(services: Services, conference: str, leg_sid: str, **changes):
    """Change a participant; a refusal (the leg is not, or no longer, in the conference) says so plainly."""
    try:
        return services.telephony.update_participant(conference, leg_sid, **changes)
    except TelephonyError as exc:
        if exc.rejected:
            raise FlowError("that phone is not in the call right now; try again in a moment") from None
        raise


def set_hold(services: Services, actor: Actor, call_sid: str, hold: bool) -> None:
    """Put the customer on hold (they hear the hold music) or take them off it."""
    with transaction(services.sessions) as session:
        call = live_call(session, actor, call_sid)
        root, conference = _conference(session, call)
        leg_sid = customer_leg_sid(session, root)
        if leg_sid is None:
            raise FlowError("the customer has hung up")
        root_sid, agent_id = root.sid, call.agent_id
    music = services.telephony.url(f"/webhooks/voice/hold-music?call={root_sid}") if hold else None
    answered = _update(services, conference, leg_sid, hold=hold, hold_url=music)
    with transaction(services.sessions) as session:
        session.scalar(select(Call).where(Call.sid == root_sid)).on_hold = answered.hold
    log.info("call %s %s by %s", root_sid, "held" if hold else "resumed", actor.id)
    push(services, {agent_id} if agent_id else set())


def set_mute(services: Services, actor: Actor, call_sid: str, muted: bool) -> None:
    """Mute or unmute the agent's own leg (the customer stops or starts hearing them)."""
    with transaction(services.sessions) as session:
        call = live_call(session, actor, call_sid)
        _, conference = _conference(session, call)
        leg = agent_leg(session, call)
        if leg is None:
            raise FlowError("your phone is not on the call")
        leg_sid, agent_id = leg.sid, call.agent_id
    answered = _update(services, conference, leg_sid, muted=muted)
    with transaction(services.sessions) as session:
        session.scalar(select(Call).where(Call.sid == leg_sid)).muted = answered.muted
    push(services, {agent_id} if agent_id else set())


def add_note(services: Services, actor: Actor, call_sid: str, text: str) -> None:
    """Save a note on the call and the customer's timeline while talking or wrapping up."""
    text = (text or "").strip()
    if not text:
        raise FlowError("write the note first", 400)
    if len(text) > NOTE_LIMIT:
        raise FlowError(f"a note holds at most {NOTE_LIMIT} characters", 400)
    now = services.clock()
    with transaction(services.sessions) as session:
        call = live_call(session, actor, call_sid, wrap_up_too=True)
        call.note = f"{call.note}\n{text}" if call.note else text
        if call.customer_id is not None:
            add_entry(session, call.customer_id, "note", f"Note: {text[:280]}", now, call=call, agent_id=actor.id,
                      details={"note": text})
        agent_id = call.agent_id
    push(services, {agent_id} if agent_id else set())


def _supervisor_login(session: Session, supervisor_id: int) -> str:
    supervisor = session.get(Agent, supervisor_id)
    if supervisor is None or supervisor.role not in (Role.SUPERVISOR.value, Role.ADMIN.value):
        raise FlowError("that person is not a supervisor", 400)
    return supervisor.login


def _join_supervisor(services: Services, session_data: dict, supervisor_id: int, mode: str) -> None:
    """Add the supervisor's softphone to the conference, or change the mode of the leg already there."""
    telephony = services.telephony
    listen, whisper = mode == "listen", mode == "whisper"
    coach = session_data["agent_leg"] if whisper else None
    if whisper and coach is None:
        raise FlowError("the agent's phone is not on the call yet")
    existing = session_data["existing"]
    if existing is not None:
        try:
            telephony.update_participant(session_data["conference"], existing, muted=listen, coaching=whisper,
                                         call_sid_to_coach=coach)
        except TelephonyError as exc:
            if not exc.rejected:
                raise
            existing = None  # that leg just left (its hang-up not reported yet): ring the supervisor again
    if existing is not None:
        sid = existing
    else:
        query = f"?call={session_data['root']}&agent={supervisor_id}&leg={Leg.SUPERVISOR.value}"
        placed = telephony.add_participant(session_data["conference"], f"client:{session_data['login']}",
                                           services.settings.caller_id, telephony.url("/webhooks/voice/status" + query),
                                           muted=listen, coach=coach)
        sid = placed.sid
    with transaction(services.sessions) as session:
        leg = ensure_leg(session, sid, session_data["root"], supervisor_id, "queued", f"client:{session_data['login']}",
                         services.settings.caller_id, kind=Leg.SUPERVISOR.value)
        leg.monitor_mode = mode
    push(services, {session_data["agent_id"]} if session_data["agent_id"] else set())


def _monitor_data(session: Session, call: Call, supervisor_id: int) -> dict:
    root, conference = _conference(session, call)
    mine = [leg.sid for leg in supervisor_legs(session, root) if leg.agent_id == supervisor_id]
    agent = agent_leg(session, call)
    return {"root": root.sid, "conference": conference, "existing": mine[0] if mine else None,
            "agent_leg": agent.sid if agent else None, "agent_id": call.agent_id,
            "login": _supervisor_login(session, supervisor_id)}


def monitor(services: Services, actor: Actor, call_sid: str, mode: str) -> None:
    """A supervisor listens (muted), whispers to the agent only (coaching) or barges in (heard by all)."""
    if not actor.supervisor:
        raise FlowError("only a supervisor can listen, whisper or barge", 403)
    if mode not in MONITOR_MODES:
        raise FlowError(f"choose a mode: one of {', '.join(MONITOR_MODES)}", 400)
    with transaction(services.sessions) as session:
        data = _monitor_data(session, live_call(session, actor, call_sid), actor.id)
    _join_supervisor(services, data, actor.id, mode)
    log.info("supervisor %s %s call %s", actor.id, mode, call_sid)


def stop_monitoring(services: Services, actor: Actor, call_sid: str) -> None:
    """The supervisor leaves the call (their leg never ends the conference)."""
    if not actor.supervisor:
        raise FlowError("only a supervisor can do that", 403)
    with transaction(services.sessions) as session:
        call = session.scalar(select(Call).where(Call.sid == call_sid, Call.leg == Leg.CUSTOMER.value))
        if call is None:
            raise FlowError("there is no such call", 404)
        legs = [leg.sid for leg in supervisor_legs(session, root_call(session, call)) if leg.agent_id == actor.id]
        agent_id = call.agent_id
    if not legs:
        raise FlowError("you are not on that call")
    for sid in legs:
        services.telephony.hang_up(sid)
    push(services, {agent_id} if agent_id else set())


def bring_in_supervisor(services: Services, actor: Actor, call_sid: str, supervisor_id: int) -> None:
    """The agent asks a supervisor onto the call: the supervisor's phone rings and joins everyone."""
    with transaction(services.sessions) as session:
        data = _monitor_data(session, live_call(session, actor, call_sid), supervisor_id)
    _join_supervisor(services, data, supervisor_id, "barge")


def people(services: Services, actor: Actor) -> dict:
    """Whom the actor can transfer to or bring in: agents who are logged in, queues and supervisors."""
    with transaction(services.sessions) as session:
        agents = session.scalars(select(Agent).where(Agent.id != actor.id).order_by(Agent.name))
        queues = session.scalars(select(Queue).order_by(Queue.name))
        everyone = list(agents)
        return {
            "agents": [{"id": a.id, "name": a.name, "free": a.presence == "available" and a.work == "idle"}
                       for a in everyone if a.role == Role.AGENT.value and a.presence != "offline"],
            "supervisors": [{"id": a.id, "name": a.name} for a in everyone
                            if a.role in (Role.SUPERVISOR.value, Role.ADMIN.value)],
            "queues": [q.name for q in queues],
        }
