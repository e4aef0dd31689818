"""Socket.IO namespaces: /agent for consoles, /supervisor for the wallboard. Authenticate on connect."""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import request
from flask_login import current_user
import socketio as socketio_lib
from flask_socketio import Namespace, emit, join_room

from campaigns.control import change_mode, change_status
from hub import agent_flows, call_controls, complaints, transfers
from hub.auth import User, user_by_id, user_for_token
from hub.call_controls import Actor
from hub.consoles import console_seen, console_sids
from hub.db import transaction
from hub.errors import FlowError
from hub.notifier import AGENT_NAMESPACE, SUPERVISOR_NAMESPACE, SUPERVISORS_ROOM, agent_room
from hub.services import Services
from hub.snapshots import agent_state, board
from hub.telephony import TelephonyError

log = logging.getLogger(__name__)


def _authenticate(auth: Any) -> User | None:
    if current_user.is_authenticated:
        return User(current_user.id, current_user.login, current_user.name, current_user.role)
    token = auth.get("token") if isinstance(auth, dict) else None
    return user_for_token(token)


def _result(action: Callable[[], None]) -> dict[str, Any]:
    try:
        action()
    except FlowError as exc:
        return {"ok": False, "error": exc.message}
    except TelephonyError:
        log.exception("telephony failed during an agent action")
        return {"ok": False, "error": "the phone system did not respond; try again"}
    return {"ok": True}


def _field(data: Any, name: str) -> str:
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def _flag(data: Any, name: str) -> bool:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, bool):
        raise FlowError(f"{name} must be true or false", 400)
    return value


def _whole(data: Any, name: str, required: bool = True) -> int | None:
    value = data.get(name) if isinstance(data, dict) else None
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FlowError(f"{name} must be a whole number", 400)
    return value


def _actor(user: User) -> Actor:
    return Actor(user.id, user.has_role("supervisor"))


class _Guarded(Namespace):
    """A namespace whose every event first re-reads the user's role: a demoted or deactivated user's event
    is refused and their socket closed, even if the cut sent at the role change was lost."""

    role = "agent"

    def __init__(self, namespace: str, services: Services) -> None:
        super().__init__(namespace)
        self.services = services
        self.users: dict[str, User] = {}
        for name in dir(self):
            if name.startswith("on_") and name not in ("on_connect", "on_disconnect"):
                setattr(self, name, self._guard(getattr(self, name)))

    def _guard(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args):
            known = self.users.get(request.sid)
            fresh = user_by_id(known.id) if known is not None else None
            if fresh is None or not fresh.has_role(self.role):
                log.info("closing a %s socket: its user no longer has the role", self.namespace)
                self._close_soon(request.sid)
                return {"ok": False, "error": "your access has changed: log in again"}
            self.users[request.sid] = fresh
            return handler(*args)

        guarded.__name__ = handler.__name__
        return guarded

    def _close_soon(self, sid: str) -> None:
        """Close the socket just after the refusal's acknowledgement has gone out, so the client reads why."""
        def close() -> None:
            self.socketio.sleep(0.2)
            self.socketio.server.disconnect(sid, namespace=self.namespace)

        self.socketio.start_background_task(close)


class AgentNamespace(_Guarded):
    """An agent's console: state pushed in, actions sent out, each acknowledged."""

    role = "agent"

    def _me(self) -> User:
        return self.users[request.sid]

    def on_connect(self, auth=None):
        user = _authenticate(auth)
        if user is None or not user.has_role("agent"):
            raise ConnectionRefusedError("login required")
        self.users[request.sid] = user
        join_room(agent_room(user.id))
        console_seen(self.services, user.id, request.sid)
        self._send_state()

    def on_disconnect(self, reason=None):
        user = self.users.pop(request.sid, None)
        if user is not None:
            log.info("a console of agent %s closed (%s)", user.id, reason)
            agent_flows.console_disconnected(self.services, user.id, request.sid)

    def on_heartbeat(self, data=None):
        console_seen(self.services, self._me().id, request.sid)
        return {"ok": True}

    def _send_state(self) -> None:
        with transaction(self.services.sessions) as session:
            state = agent_state(session, self._me().id, self.services.clock())
        emit("state", state)

    def on_refresh(self, data=None):
        self._send_state()
        return {"ok": True}

    def on_set_presence(self, data):
        me = self._me().id
        return _result(lambda: agent_flows.change_presence(
            self.services, me, _field(data, "presence"), _field(data, "reason") or None))

    def on_accept(self, data):
        me = self._me().id
        return _result(lambda: agent_flows.answer_offer(self.services, me, _field(data, "call_sid"), True))

    def on_decline(self, data):
        me = self._me().id
        return _result(lambda: agent_flows.answer_offer(self.services, me, _field(data, "call_sid"), False))

    def on_hang_up(self, data):
        me = self._me().id
        return _result(lambda: agent_flows.hang_up(self.services, me, _field(data, "call_sid")))

    def on_preview_dial(self, data):
        me = self._me().id
        return _result(lambda: agent_flows.dial_preview(self.services, me, _lead_id(data)))

    def on_manual_dial(self, data):
        me = self._me().id
        return _result(lambda: agent_flows.dial_manual(self.services, me, _whole(data, "campaign_id"),
                                                       _field(data, "number")))

    def on_preview_skip(self, data):
        me = self._me().id
        return _result(lambda: agent_flows.skip_preview(self.services, me, _lead_id(data)))

    # ---- in-call controls (hub.call_controls, hub.transfers) ----

    def on_hold(self, data):
        me = _actor(self._me())
        return _result(lambda: call_controls.set_hold(self.services, me, _field(data, "call_sid"), _flag(data, "hold")))

    def on_mute(self, data):
        me = _actor(self._me())
        return _result(lambda: call_controls.set_mute(self.services, me, _field(data, "call_sid"), _flag(data, "muted")))

    def on_add_note(self, data):
        me = _actor(self._me())
        return _result(lambda: call_controls.add_note(self.services, me, _field(data, "call_sid"), _field(data, "text")))

    def on_transfer(self, data):
        me = _actor(self._me())
        return _result(lambda: transfers.transfer(
            self.services, me, _field(data, "call_sid"), _field(data, "kind"),
            agent_id=_whole(data, "agent_id", required=False), queue_name=_field(data, "queue") or None))

    def on_complete_transfer(self, data):
        me = _actor(self._me())
        return _result(lambda: transfers.complete_transfer(self.services, me, _field(data, "call_sid")))

    def on_cancel_transfer(self, data):
        me = _actor(self._me())
        return _result(lambda: transfers.cancel_transfer(self.services, me, _field(data, "call_sid")))

    def on_bring_in_supervisor(self, data):
        me = _actor(self._me())
        return _result(lambda: call_controls.bring_in_supervisor(
            self.services, me, _field(data, "call_sid"), _whole(data, "supervisor_id")))

    def on_transfer_targets(self, data=None):
        try:
            return {"ok": True, **call_controls.people(self.services, _actor(self._me()))}
        except FlowError as exc:
            return {"ok": False, "error": exc.message}

    def on_wrap_up(self, data):
        me = self._me().id
        return _result(lambda: agent_flows.finish_wrap_up(
            self.services, me, _field(data, "call_sid"), _field(data, "disposition"), _field(data, "note"),
            data.get("answers") if isinstance(data, dict) else None,
            data.get("callback") if isinstance(data, dict) else None,
            data.get("complaint") if isinstance(data, dict) else None))

    def on_close_complaint(self, data):
        """Close a complaint with its resolution (a supervisor any, an agent those they opened)."""
        me = _actor(self._me())
        return _result(lambda: complaints.close_complaint(self.services, me, _whole(data, "complaint_id"),
                                                          _field(data, "resolution")))


def _lead_id(data) -> int:
    return _whole(data, "lead_id")


class SupervisorNamespace(_Guarded):
    """The wallboard: board snapshots pushed on every change; supervisors and admins only."""

    role = "supervisor"

    def on_disconnect(self, reason=None):
        user = self.users.pop(request.sid, None)
        if user is not None:
            self.services.redis.srem(_wallboards_key(self.services, user.id), request.sid)

    def on_connect(self, auth=None):
        user = _authenticate(auth)
        if user is None or not user.has_role("supervisor"):
            raise ConnectionRefusedError("supervisor login required")
        self.users[request.sid] = user
        key = _wallboards_key(self.services, user.id)
        self.services.redis.sadd(key, request.sid)
        self.services.redis.expire(key, WALLBOARD_KEY_TTL_S)
        join_room(SUPERVISORS_ROOM)
        self._send_board()

    def _send_board(self) -> None:
        with transaction(self.services.sessions) as session:
            data = board(session, self.services.clock())
        emit("board", data)

    def on_refresh(self, data=None):
        self._send_board()
        return {"ok": True}

    def on_monitor(self, data):
        """Listen, whisper or barge on an agent's call (the flow checks the role again)."""
        me = _actor(self.users[request.sid])
        return _result(lambda: call_controls.monitor(self.services, me, _field(data, "call_sid"), _field(data, "mode")))

    def on_stop_monitoring(self, data):
        me = _actor(self.users[request.sid])
        return _result(lambda: call_controls.stop_monitoring(self.services, me, _field(data, "call_sid")))

    # ---- the supervisor's actions on agents and campaigns ----

    def on_set_agent_presence(self, data):
        """Put an agent available, on a break (with a reason) or offline; a call in progress finishes first."""
        reason = _field(data, "reason") or None
        return _result(lambda: agent_flows.change_presence(self.services, _whole(data, "agent_id"),
                                                           _field(data, "presence"), reason))

    def on_log_out_agent(self, data):
        """Take an agent off the phones (offline) and close their consoles; they may log in again."""
        close_consoles = partial(cut_consoles, self.services, self.socketio)
        return _result(lambda: agent_flows.log_out(self.services, _whole(data, "agent_id"), close_consoles))

    def on_campaign_action(self, data):
        """Start, pause, resume or stop a campaign."""
        return _result(lambda: change_status(self.services, _whole(data, "campaign_id"),
                                             _field(data, "action")))

    def on_set_campaign_mode(self, data):
        return _result(lambda: change_mode(self.services, _whole(data, "campaign_id"), _field(data, "mode")))


def cut_consoles(services: Services, socketio, agent_id: int) -> None:
    """Close every open console of an agent, on whichever web process it is connected."""
    for sid in console_sids(services, agent_id):
        socketio.server.disconnect(sid, namespace="/agent")


WALLBOARD_KEY_TTL_S = 7 * 24 * 3600  # a wallboard left open for days stays listed


def _wallboards_key(services: Services, user_id: int) -> str:
    return f"switchboard:{services.settings.socketio_channel}:wallboards:{user_id}"


class _SocketCutter(socketio_lib.RedisManager):
    """Ask every web process, through Socket.IO's Redis channel, to close given sockets. Works from any
    process (the CLI too); the web process holding the socket closes it on receipt."""

    def __init__(self, redis_url: str, channel: str) -> None:
        super().__init__(redis_url, channel=channel, write_only=True)

    def close(self, sid: str, namespace: str) -> None:
        self._publish({"method": "disconnect", "sid": sid, "namespace": namespace, "host_id": self.host_id})


def cut_sockets_after_role_change(services: Services, user_id: int, role: str | None) -> int:
    """Close the sockets a user may no longer hold with `role` (None: deactivated): the wallboard when they
    are no longer a supervisor, consoles too when they are no longer an agent. Returns how many were cut."""
    user = User(user_id, "", "", role or "")
    doomed = []
    if not user.has_role("supervisor"):
        doomed += [(sid.decode(), SUPERVISOR_NAMESPACE)
                   for sid in services.redis.smembers(_wallboards_key(services, user_id))]
    if not user.has_role("agent"):
        doomed += [(sid, AGENT_NAMESPACE) for sid in console_sids(services, user_id)]
    if doomed:
        cutter = _SocketCutter(services.settings.redis_url, services.settings.socketio_channel)
        for sid, namespace in doomed:
            cutter.close(sid, namespace)
    return len(doomed)
