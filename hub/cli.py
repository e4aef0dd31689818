"""`python -m hub ...`: serve, worker, simulate, demo, db upgrade, and admin commands."""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

from campaigns.cli import add_commands as add_campaign_commands
from crm.cli import add_commands as add_crm_commands
from config.settings import Settings, SettingsError, load_settings

log = logging.getLogger("hub")


def _settings() -> Settings:
    return load_settings(os.environ)


def cmd_serve(args) -> int:
    from hub.app import create_app

    settings = _settings()
    app = create_app(settings)
    socketio = app.extensions["switchboard.socketio"]
    print(f"Switchboard hub listening on http://{args.host}:{args.port}", flush=True)
    socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True, use_reloader=False,
                 log_output=False)
    return 0


def cmd_worker(args) -> int:
    from rq import Worker
    from rq.serializers import JSONSerializer

    from campaigns.tasks import schedule_reconcile
    from crm.tasks import ensure_daily
    from hub import tasks
    from hub.jobs import break_dead_scheduler_lock
    from hub.services import build_services

    services = build_services(_settings())
    tasks.install(services)
    tasks.schedule_sweep(services, services.clock())
    schedule_reconcile(services, services.clock())
    ensure_daily(services)  # the CRM's daily recompute
    if break_dead_scheduler_lock(services.redis, services.jobs.queue.name):
        log.warning("freed the scheduler lock of a worker that died on this host")
    # retry the scheduler lock every 10 s (RQ's default is 10 minutes), so timers survive a dead worker; an
    # idle worker wakes from waiting for jobs every worker_ttl - 15 s to do it (RQ's default: 405 s)
    worker = Worker([services.jobs.queue], connection=services.redis, serializer=JSONSerializer,
                    maintenance_interval=10, worker_ttl=25)
    worker.work(with_scheduler=True, logging_level="WARNING")
    return 0


def cmd_simulate(args) -> int:
    from simulator.cli import main as simulate

    return simulate(args.rest, _settings())


def cmd_demo(args) -> int:
    from hub.demo import run_demo

    return run_demo(args)


def cmd_db_upgrade(args) -> int:
    from hub.migrate import upgrade

    upgrade(_settings().database_url, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def _in_session(action):
    from hub.db import make_engine, make_session_factory, transaction

    engine = make_engine(_settings().database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            return action(session)
    finally:
        engine.dispose()


def cmd_agents_add(args) -> int:
    from hub.admin import add_agent, parse_skills

    password = args.password or os.environ.get("SWITCHBOARD_NEW_AGENT_PASSWORD") or getpass.getpass("Password: ")
    agent = _in_session(lambda s: add_agent(s, args.login, args.name, password, args.role,
                                            parse_skills(args.skills), args.team))
    print(f"agent {agent.login} ({agent.role}) created with id {agent.id}")
    return 0


def _cut_sockets(agent_id: int, role: str | None) -> int:
    from agent_ui.events import cut_sockets_after_role_change
    from hub.services import build_services

    services = build_services(_settings())
    try:
        return cut_sockets_after_role_change(services, agent_id, role)
    finally:
        services.close()


def cmd_agents_set_role(args) -> int:
    from hub.admin import change_role

    agent_id = _in_session(lambda s: change_role(s, args.login, args.role).id)
    cut = _cut_sockets(agent_id, args.role)
    print(f"agent {args.login} is now {args.role}; {cut} open socket(s) closed")
    return 0


def cmd_agents_deactivate(args) -> int:
    from hub.admin import deactivate

    agent_id = _in_session(lambda s: deactivate(s, args.login).id)
    cut = _cut_sockets(agent_id, None)
    print(f"agent {args.login} deactivated; {cut} open socket(s) closed")
    return 0


def _queue_rules(args) -> dict:
    from hub.admin import parse_escalation, parse_hours

    if args.open and not args.timezone:
        from hub.errors import FlowError

        raise FlowError("--open needs --timezone", 400)
    return dict(
        strategy=args.strategy, preferred_window_s=args.preferred_window,
        escalation=parse_escalation(args.escalate) if args.escalate else None, max_wait_s=args.max_wait,
        overflow=args.overflow, hours=parse_hours(args.timezone, args.open) if args.open else None,
        after_hours=args.after_hours, service_level_s=args.service_level,
    )


def cmd_queues_add(args) -> int:
    from hub.admin import add_queue, parse_skills

    region = _settings().default_region
    queue = _in_session(lambda s: add_queue(s, args.name, args.number, parse_skills(args.skills),
                                            args.offer_timeout, args.wrap_up, region, **_queue_rules(args)))
    print(f"queue {queue.name} created with id {queue.id}")
    return 0


def cmd_queues_set(args) -> int:
    from sqlalchemy import select

    from hub.admin import configure_queue
    from hub.errors import FlowError
    from hub.models import Queue

    def change(session):
        queue = session.scalar(select(Queue).where(Queue.name == args.name))
        if queue is None:
            raise FlowError(f"no queue named {args.name!r}", 404)
        return configure_queue(queue, **_queue_rules(args))

    queue = _in_session(change)
    print(f"queue {queue.name} updated")
    return 0


def _add_rule_options(p) -> None:
    p.add_argument("--strategy", choices=["longest_idle", "fewest_calls", "highest_skill", "round_robin"])
    p.add_argument("--preferred-window", type=int, help="seconds the owner / last agent are tried first")
    p.add_argument("--escalate", action="append", help="after seconds : wider skills, e.g. 60:support:1 (repeat)")
    p.add_argument("--max-wait", type=int, help="seconds before a waiting caller overflows (0: never)")
    p.add_argument("--overflow", help="after the maximum wait: voicemail, callback or queue:NAME")
    p.add_argument("--timezone", help="the queue's time zone, e.g. America/New_York")
    p.add_argument("--open", action="append", help="opening hours, e.g. 'mon-fri 08:00-18:00' (repeat)")
    p.add_argument("--after-hours", help="when closed: voicemail, callback or queue:NAME")
    p.add_argument("--service-level", type=int, help="service-level target in seconds (default 20)")


def cmd_customers_import(args) -> int:
    from hub.customers import import_customers

    region = args.region or _settings().default_region
    with open(args.csv, newline="", encoding="utf-8-sig") as stream:
        report = _in_session(lambda s: import_customers(s, stream, region))
    print(f"imported {report.imported}, updated {report.updated}, rejected {len(report.rejected)}")
    for line, reason in report.rejected:
        print(f"  line {line}: {reason}")
    return 0 if not report.rejected else 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hub", description="Switchboard contact hub")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the web server with Socket.IO")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run an RQ worker (with the scheduler for timers)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("simulate", help="run the carrier simulator (plays Twilio)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("demo", help="run everything on embedded defaults with demo data and simulated calls")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--sim-port", type=int, default=5055)
    p.add_argument("--rate", type=float, default=6.0, help="simulated calls per minute")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--mean-talk", type=float, default=45.0, help="mean simulated talk time, seconds")
    p.add_argument("--keep-data", action="store_true", help="reuse the demo database instead of recreating it")
    p.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database commands").add_subparsers(dest="db_command", required=True)
    p = db.add_parser("upgrade", help="apply Alembic migrations")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=cmd_db_upgrade)

    agents = sub.add_parser("agents", help="manage agents").add_subparsers(dest="agents_command", required=True)
    p = agents.add_parser("add", help="add an agent, supervisor or admin")
    p.add_argument("login")
    p.add_argument("--name", required=True)
    p.add_argument("--role", default="agent", choices=["agent", "supervisor", "admin"])
    p.add_argument("--skills", default="", help="e.g. support:3,sales")
    p.add_argument("--team")
    p.add_argument("--password", help="prompted for when omitted (or SWITCHBOARD_NEW_AGENT_PASSWORD)")
    p.set_defaults(func=cmd_agents_add)
    p = agents.add_parser("set-role", help="change an agent's role (open sockets the new role may not hold close)")
    p.add_argument("login")
    p.add_argument("role", choices=["agent", "supervisor", "admin"])
    p.set_defaults(func=cmd_agents_set_role)
    p = agents.add_parser("deactivate", help="take every access away from an agent and close their sockets")
    p.add_argument("login")
    p.set_defaults(func=cmd_agents_deactivate)

    queues = sub.add_parser("queues", help="manage queues").add_subparsers(dest="queues_command", required=True)
    p = queues.add_parser("add", help="add a queue")
    p.add_argument("name")
    p.add_argument("--number", help="the number callers dial to reach this queue")
    p.add_argument("--skills", default="", help="required skills with minimum levels, e.g. support:2")
    p.add_argument("--offer-timeout", type=int, default=15, help="seconds an agent has to accept")
    p.add_argument("--wrap-up", type=int, default=60, help="seconds of wrap-up after each call")
    _add_rule_options(p)
    p.set_defaults(func=cmd_queues_add)
    p = queues.add_parser("set", help="change a queue's routing rules")
    p.add_argument("name")
    _add_rule_options(p)
    p.set_defaults(func=cmd_queues_set)

    customers = sub.add_parser("customers", help="manage customers").add_subparsers(
        dest="customers_command", required=True)
    p = customers.add_parser("import", help="import customers from CSV (name, phone, [phone2, email, tier, stage, owner])")
    p.add_argument("csv")
    p.add_argument("--region", help="region for numbers without a country code (default: settings)")
    p.set_defaults(func=cmd_customers_import)
    add_campaign_commands(sub)
    add_crm_commands(sub)
    return parser


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "twilio.http_client", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if argv[:1] == ["simulate"]:  # the simulator parses its own options
        argv = ["simulate", "--", *argv[1:]]
    args = build_parser().parse_args(argv)
    if getattr(args, "rest", None) and args.rest[0] == "--":
        args.rest = args.rest[1:]
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line for operator errors
        from hub.errors import FlowError

        if isinstance(exc, FlowError):
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        raise
