"""The app factory and composition root: settings in, a Flask app with Socket.IO out."""
from __future__ import annotations

import logging

from flask import Flask
from flask_socketio import SocketIO

from agent_ui.events import AgentNamespace, SupervisorNamespace
from config.settings import Settings
from hub.auth import csrf_token, init_login
from hub.board_feed import BoardFeed
from hub.deferred_routing import AfterAnswerRouter
from hub.notifier import AGENT_NAMESPACE, SUPERVISOR_NAMESPACE
from hub.services import Services, build_services


def create_app(settings: Settings, services: Services | None = None) -> Flask:
    """Build the hub's web app; `services` lets tests and the simulator plug in their own seams."""
    settings.require("secret_key")
    services = services or build_services(settings)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        REMEMBER_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=50 * 1024 * 1024,
    )
    app.extensions["switchboard"] = services
    router = AfterAnswerRouter(services)
    app.extensions["deferred_router"] = router
    router.start()
    services.on_close(router.stop)
    init_login(app)
    app.jinja_env.globals["csrf_token"] = csrf_token

    from agent_ui.customer_views import bp as console_customers_bp
    from agent_ui.views import bp as ui_bp
    from agent_ui.reports import bp as reports_bp
    from campaigns.views import bp as campaigns_api_bp
    from crm.views import bp as crm_api_bp
    from hub.api import bp as api_bp
    from webhooks.views import bp as webhooks_bp
    from webhooks.outbound import bp as outbound_webhooks_bp

    app.register_blueprint(ui_bp)
    app.register_blueprint(console_customers_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(campaigns_api_bp)
    app.register_blueprint(crm_api_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(outbound_webhooks_bp)

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    socketio = SocketIO(
        app,
        async_mode="threading",
        message_queue=settings.redis_url,
        channel=settings.socketio_channel,
        logger=False,
        engineio_logger=False,
    )
    socketio.on_namespace(AgentNamespace(AGENT_NAMESPACE, services))
    socketio.on_namespace(SupervisorNamespace(SUPERVISOR_NAMESPACE, services))
    app.extensions["switchboard.socketio"] = socketio
    feed = BoardFeed(services)
    feed.start()
    services.on_close(feed.stop)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return app
