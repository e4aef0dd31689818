"""Who is asking: session login (Flask-Login) for pages, bearer tokens for the API and bots, roles for both."""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import abort, current_app, request, session
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from hub.db import transaction
from hub.models import Agent, Role

ROLE_RANK = {Role.AGENT.value: 0, Role.SUPERVISOR.value: 1, Role.ADMIN.value: 2}
DEACTIVATED = "deactivated"  # a stored role outside ROLE_RANK: no login, no token, no session, no socket


@dataclass
class User(UserMixin):
    """The logged-in agent, detached from any database session."""

    id: int
    login: str
    name: str
    role: str

    def get_id(self) -> str:
        return str(self.id)

    def has_role(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]


def _user(agent: Agent | None) -> User | None:
    """The user behind an agent row; None for a deactivated one, so every login, token and session fails."""
    if agent is None or agent.role not in ROLE_RANK:
        return None
    return User(agent.id, agent.login, agent.name, agent.role)


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sessions():
    return current_app.extensions["switchboard"].sessions


def check_credentials(login: str, password: str) -> User | None:
    """Return the user whose login and password match, else None."""
    with transaction(_sessions()) as db:
        agent = db.scalar(select(Agent).where(Agent.login == login))
        if agent is None or not check_password_hash(agent.password_hash, password):
            return None
        return _user(agent)


def issue_token(user_id: int) -> str:
    """Give an agent a new API token (the previous one stops working)."""
    token = secrets.token_urlsafe(32)
    with transaction(_sessions()) as db:
        db.get(Agent, user_id).api_token_hash = token_digest(token)
    return token


def user_for_token(token: str | None) -> User | None:
    if not token:
        return None
    with transaction(_sessions()) as db:
        return _user(db.scalar(select(Agent).where(Agent.api_token_hash == token_digest(token))))


def user_by_id(user_id: int) -> User | None:
    with transaction(_sessions()) as db:
        return _user(db.get(Agent, user_id))


def init_login(app) -> LoginManager:
    manager = LoginManager(app)
    manager.login_view = "agent_ui.login"

    @manager.user_loader
    def load_user(user_id: str) -> User | None:
        return user_by_id(int(user_id))

    @manager.request_loader
    def load_from_token(req) -> User | None:
        header = req.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return user_for_token(header[7:].strip())
        return None

    return manager


def role_required(role: str, *, api: bool = False):
    """Allow the view only to logged-in users with at least `role` (401 or login page, then 403)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                if api:
                    abort(401)
                return current_app.login_manager.unauthorized()
            if not current_user.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


# ---------------------------------------------------------------- CSRF for session-authenticated forms


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    """Refuse (400) a form POST whose csrf_token does not match the session's."""
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(400, description="the form expired; reload the page and try again")
