"""Pages: login, the agent console and the supervisor wallboard (first cut)."""
from __future__ import annotations

from contextlib import suppress
from functools import partial
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from agent_ui.events import cut_consoles
from agent_ui.node_scripts import send_node_script
from hub import agent_flows
from hub.auth import check_credentials, check_csrf, role_required
from hub.errors import FlowError

bp = Blueprint("agent_ui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/ui")


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") else None


@bp.get("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("agent_ui.login"))
    if current_user.has_role("supervisor"):
        return redirect(url_for("agent_ui.wallboard"))
    return redirect(url_for("agent_ui.agent_console"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    next_url = _safe_next(request.values.get("next"))
    if request.method == "POST":
        check_csrf()
        user = check_credentials(request.form.get("login", "").strip(), request.form.get("password", ""))
        if user is not None:
            login_user(user)
            return redirect(next_url or url_for("agent_ui.home"))
        error = "Wrong login or password."
    return render_template("login.html", error=error, next=next_url), (401 if error else 200)


@bp.post("/logout")
def logout():
    check_csrf()
    if current_user.is_authenticated:
        services = current_app.extensions["switchboard"]
        with suppress(FlowError):  # the flow logged it: the session ends whatever routing says
            agent_flows.log_out(services, current_user.id,
                                partial(cut_consoles, services, current_app.extensions["switchboard.socketio"]))
    logout_user()
    return redirect(url_for("agent_ui.login"))


@bp.get("/agent")
@role_required("agent")
def agent_console():
    return render_template("agent.html")


@bp.get("/supervisor")
@role_required("supervisor")
def wallboard():
    return render_template("supervisor.html")


@bp.get("/assets/socket.io.min.js")
def socketio_client():
    return send_node_script("socket.io-client/dist", "socket.io.min.js")
