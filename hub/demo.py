"""`python -m hub demo`: the whole hub on embedded defaults, with demo data and simulated calls flowing.

It creates a SQLite database with queues, agents (most of them simulated), customers with call and purchase
history and a running outbound screening campaign, recomputes the customers' value tiers, lifecycle stages and
lifetime values once, then runs the web server, one RQ worker and the carrier simulator as child processes
until Ctrl-C.
"""
from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from config.settings import load_settings
from hub.admin import add_agent, add_queue
from hub.columns import utcnow
from hub.customers import add_entry
from hub.db import make_engine, make_session_factory, transaction
from hub.migrate import upgrade
from hub.models import DISPOSITIONS, Call, Customer, CustomerPhone, Leg, Stage, Tier

DEMO_PASSWORD = "switchboard"
QUEUES = [("Support", "+14155550100", {"support": 2}), ("Sales", "+14155550101", {"sales": 1}),
          ("Billing", "+14155550102", {"billing": 1})]
QUEUE_RULES = {
    # experts first; after 30 s anyone with the skill; after 3 minutes, voicemail
    "Support": dict(escalation=[{"after_s": 30, "skills": {"support": 1}}], max_wait_s=180, overflow="voicemail"),
    # spread the work evenly; after 2 minutes, Support takes the caller (keeping their place by arrival)
    "Sales": dict(strategy="fewest_calls", max_wait_s=120, overflow="queue:Support"),
    # office hours in New York; outside them, voicemail
    "Billing": dict(hours={"timezone": "America/New_York", "days": {str(d): ["08:00", "20:00"] for d in range(6)}},
                    after_hours="voicemail"),
}
HUMANS = [("super", "Sam Supervisor", "supervisor", {"support": 3, "sales": 3, "billing": 3}),
          ("alice", "Alice Agent", "agent", {"support": 3, "sales": 2, "billing": 1}),
          ("bob", "Bob Agent", "agent", {"support": 2, "sales": 3})]
SIM_SKILLS = [{"support": 2}, {"support": 3, "billing": 1}, {"sales": 2}, {"sales": 3, "support": 1},
              {"billing": 2, "support": 1}, {"support": 1, "sales": 1}, {"billing": 3}]
FIRST = ["Ada", "Ben", "Cleo", "Dev", "Eva", "Finn", "Gia", "Hugo", "Iris", "Jon", "Kai", "Lena", "Milo",
         "Nora", "Omar", "Pia", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Vik", "Wes", "Yara", "Zoe"]
LAST = ["Novak", "Okafor", "Silva", "Chen", "Haddad", "Kowalski", "Moreau", "Tanaka", "Ivanova", "Garcia",
        "Larsen", "Mensah", "Rossi", "Schmidt", "Patel", "Nguyen", "Dubois", "Costa"]


def seed(database_url: str, rng: random.Random, customers: int = 200) -> dict:
    """Fill an empty database with demo queues, agents and customers with history; return the scenario.

    Tiers and stages start as standard prospects: `recompute_crm` derives them from the purchase history.
    """
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    now = utcnow()
    with transaction(sessions) as session:
        queues = [add_queue(session, name, number, skills, **QUEUE_RULES[name]) for name, number, skills in QUEUES]
        agents = [add_agent(session, login, name, DEMO_PASSWORD, role, skills)
                  for login, name, role, skills in HUMANS]
        for i, skills in enumerate(SIM_SKILLS, start=1):
            agents.append(add_agent(session, f"sim{i:02d}", f"Sim Agent {i:02d}", DEMO_PASSWORD, "agent", skills,
                                    team="simulated", simulated=True))
        numbers = []
        ids = []
        for i in range(customers):
            number = f"+1{rng.choice(['212', '312', '415', '512', '617', '646', '718', '919'])}555{i:04d}"
            numbers.append(number)
            customer = Customer(
                name=f"{rng.choice(FIRST)} {rng.choice(LAST)}", email=f"customer{i}@example.com",
                value_tier=Tier.STANDARD.value, lifecycle_stage=Stage.PROSPECT.value,
                phones=[CustomerPhone(number=number, label="mobile")],
                custom_fields={"city": rng.choice(["Austin", "Boston", "Chicago", "New York", "San Francisco"])},
            )
            session.add(customer)
            session.flush()
            ids.append(customer.id)
            for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
                _past_call(session, rng, customer, queues, agents, now)
        _seed_orders(session, rng, ids, now)
        _seed_campaign(session, rng, agents, numbers, now)
        agent_ids = [agent.id for agent in agents]
    recompute_crm(sessions, now)
    with transaction(sessions) as session:  # gold customers have an account manager, whom routing prefers
        for customer in session.scalars(select(Customer).where(Customer.value_tier == Tier.GOLD.value)):
            customer.owner_agent_id = rng.choice(agent_ids)
    engine.dispose()
    return {
        "queue_numbers": [number for _, number, _ in QUEUES],
        "caller_numbers": numbers + [f"+1737555{n:04d}" for n in range(40)],  # some callers are new
        "agents": [{"login": f"sim{i:02d}", "password": DEMO_PASSWORD} for i in range(1, len(SIM_SKILLS) + 1)],
    }


PRODUCTS = [(500.0, "Solar panel kit", "Solar"), (250.0, "Home battery", "Storage"), (120.0, "Inverter", "Solar"),
            (40.0, "Maintenance plan", "Service"), (0.0, "Cable kit", "Accessories")]  # by the amount paid


def _seed_orders(session, rng: random.Random, customer_ids: list[int], now) -> None:
    """Purchase history as the buy-till-you-die models picture it, seeded: a fifth never bought; the others
    buy at their own rate (gamma-distributed, so a few buy often) until they quietly leave (after each purchase
    with their own probability), and spend around their own level (log-normal, so a few spend a lot): the
    revenue follows a Pareto-like curve, and the stages range from first-time buyers to churned."""
    from crm.models import CrmSettings, CustomerValue
    from crm.orders import insert_orders

    session.add(CrmSettings(id=1, currency="USD", cost_per_minute=0.8, cost_per_order=3.0, rules={}))
    rows, recent = [], []
    for customer_id in customer_ids:
        if rng.random() < 0.2:
            continue  # a prospect
        per_year = rng.gammavariate(1.5, 3.0)  # purchases a year while they are a customer
        leaves = rng.betavariate(1.0, 8.0)  # the chance they leave after a purchase
        level = rng.lognormvariate(4.5, 0.8)  # their usual spend, dollars
        day = now - timedelta(days=rng.uniform(0, 900))
        while day <= now:
            dollars = max(5.0, rng.gammavariate(6.0, level / 6.0))
            _, product, category = next(p for p in PRODUCTS if dollars >= p[0])
            rows.append({"customer_id": customer_id, "ordered_at": day, "amount_cents": int(dollars * 100),
                         "currency": "USD", "product": product, "category": category, "source": "import",
                         "external_id": f"DEMO-{len(rows) + 1}", "created_at": now})
            if rng.random() < leaves:
                break
            day += timedelta(days=rng.expovariate(per_year / 365.0))
        if rows and rows[-1]["customer_id"] == customer_id and rows[-1]["ordered_at"] > now - timedelta(days=60):
            recent.append(customer_id)
    insert_orders(session, rows)
    for customer_id in rng.sample(recent, min(3, len(recent))):  # recent buyers who referred friends
        session.add(CustomerValue(customer_id=customer_id, advocate=True))


def recompute_crm(sessions, now) -> None:
    """Score every customer once (tier, stage, lifetime value) so that the first screen pop shows them."""
    from crm.recompute import recompute_all

    result = recompute_all(sessions, now)
    if result.note:
        print(f"CRM recompute: {result.note}", file=sys.stderr)


# lead numbers spread over many time zones, so that at any hour some may be called and the wallboard shows
# why the others may not (each pattern gets a running number; invalid ones are dropped)
LEAD_NUMBER_PATTERNS = ["+1212555{:04d}", "+1312555{:04d}", "+1303555{:04d}", "+1415555{:04d}",
                        "+1907555{:04d}", "+1808555{:04d}", "+4420794{:05d}", "+8131234{:04d}"]
DEMO_SCRIPT = {
    "questions": [{"key": "homeowner", "text": "Do you own your home?", "type": "yes_no"},
                  {"key": "bill", "text": "Monthly electricity bill (USD)", "type": "number"},
                  {"key": "roof", "text": "Roof type", "type": "choice", "options": ["tile", "shingle", "flat", "other"]}],
    "qualify": [{"key": "homeowner", "equals": "yes"}, {"key": "bill", "min": 100},
                {"key": "roof", "in": ["tile", "shingle"]}],
}


def _seed_campaign(session, rng: random.Random, agents, customer_numbers: list[str], now) -> None:
    """A running progressive screening campaign worked by alice, bob and three simulated agents."""
    import phonenumbers

    from campaigns.models import Campaign, CampaignAgent, DncEntry, Lead, RegistryExtract

    campaign = Campaign(
        name="Solar screening", status="running", mode="progressive", caller_id="+14155550199",
        schedule={"timezone": "UTC", "days": list(range(7)), "start": "00:00", "end": "23:59"},
        script=DEMO_SCRIPT, wrap_up_s=20, abandon_message="This is Sunny Roofs calling from 415 555 0199. "
        "Sorry we missed you; we will try again later, or call us back at 415 555 0199.",
        territories={"NY": {"rep": "Nina Field"}, "*": {"rep": "Pat Field"}},
        cost_per_lead=0.25, cost_per_minute=0.014, cost_per_agent_hour=22.0)
    session.add(campaign)
    extract = RegistryExtract(extract_date=now.date(), rows=3)
    session.add(extract)
    session.flush()
    for agent in agents:
        if agent.login in ("alice", "bob") or agent.login in ("sim01", "sim03", "sim06"):
            session.add(CampaignAgent(campaign_id=campaign.id, agent_id=agent.id))
    leads = []
    for i in range(300):
        number = LEAD_NUMBER_PATTERNS[i % len(LEAD_NUMBER_PATTERNS)].format(1000 + i)
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            leads.append(Lead(campaign_id=campaign.id, phone=number, first_name=rng.choice(FIRST),
                              last_name=rng.choice(LAST), list_name=rng.choice(["spring-fair", "web-form"]),
                              priority=rng.choice([0, 0, 0, 1])))
    owners = dict(session.query(CustomerPhone.number, CustomerPhone.customer_id)
                  .filter(CustomerPhone.number.in_(customer_numbers[:20])))
    for number in customer_numbers[:20]:  # existing customers: their timelines show every attempt
        leads.append(Lead(campaign_id=campaign.id, phone=number, list_name="customers", customer_id=owners[number]))
    session.add_all(leads)
    for lead in leads[5:8]:  # opted out, and on the national registry
        session.add(DncEntry(phone=lead.phone, source="internal", reason="asked not to be called"))
        session.add(DncEntry(phone=lead.phone[:-1] + "9", source="registry", extract_id=extract.id))


def _past_call(session, rng: random.Random, customer: Customer, queues, agents, now) -> None:
    started = now - timedelta(days=rng.uniform(1, 120), seconds=rng.uniform(0, 3600))
    queue = rng.choice(queues)
    agent = rng.choice(agents)
    talk = int(rng.lognormvariate(5, 0.5))
    wait = rng.randint(2, 60)
    call = Call(
        sid="CA" + secrets.token_hex(16), leg=Leg.CUSTOMER.value, direction="inbound",
        from_number=customer.phones[0].number, to_number=queue.phone_number, customer_id=customer.id,
        queue_id=queue.id, agent_id=agent.id, status="completed", routing_state="ended", created_at=started,
        connected_at=started + timedelta(seconds=wait), ended_at=started + timedelta(seconds=wait + talk),
        duration_s=wait + talk, disposition=rng.choice(DISPOSITIONS), tried_agent_ids=[],
        note=rng.choice(["Asked about delivery dates.", "Updated billing address.", "Interested in the upgrade.",
                         "Reported a fault; ticket opened.", None]),
    )
    session.add(call)
    session.flush()
    add_entry(session, customer.id, "call", f"Inbound call to {queue.name}, answered by {agent.name}, "
              f"{call.duration_s} s", started, call=call, agent_id=agent.id,
              details={"outcome": "answered", "wait_s": wait, "talk_s": talk, "queue": queue.name})
    add_entry(session, customer.id, "disposition", f"Disposition: {call.disposition}"
              + (f". {call.note}" if call.note else ""), call.ended_at, call=call, agent_id=agent.id,
              details={"disposition": call.disposition, "note": call.note})


def _redis_ok(url: str) -> bool:
    try:
        client = Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.close()
        return True
    except (RedisError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def run_demo(args) -> int:
    env = dict(os.environ)
    children: list[subprocess.Popen] = []
    redis_url = env.get("SWITCHBOARD_REDIS_URL", "redis://localhost:6379/0")
    if not _redis_ok(redis_url):
        if shutil.which("redis-server") is None:
            print(f"Redis is not reachable at {redis_url}: start it (e.g. `redis-server --daemonize yes`) "
                  "or set SWITCHBOARD_REDIS_URL.", file=sys.stderr)
            return 1
        port = _free_port()
        children.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                          "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))
        _wait_for_port(port)
        redis_url = f"redis://127.0.0.1:{port}/0"
        print(f"Redis was not reachable; started a private redis-server on port {port}.")
    env.setdefault("SWITCHBOARD_DATABASE_URL", "sqlite:///instance/demo.db")
    env["SWITCHBOARD_REDIS_URL"] = redis_url
    env.setdefault("SWITCHBOARD_SECRET_KEY", secrets.token_urlsafe(32))
    env.setdefault("SWITCHBOARD_TWILIO_ACCOUNT_SID", "AC" + secrets.token_hex(16))
    env.setdefault("SWITCHBOARD_TWILIO_AUTH_TOKEN", secrets.token_hex(16))
    env["SWITCHBOARD_PUBLIC_URL"] = f"http://127.0.0.1:{args.port}"
    env["SWITCHBOARD_TWILIO_API_URL"] = f"http://127.0.0.1:{args.sim_port}"
    settings = load_settings(env)

    scenario_path = os.path.join("instance", "demo-scenario.json")
    if settings.is_sqlite and not args.keep_data:
        path = settings.database_url.split("///", 1)[-1]
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    upgrade(settings.database_url)
    if not args.keep_data or not os.path.exists(scenario_path):
        scenario = seed(settings.database_url, random.Random(args.seed))  # recomputes the CRM once
        os.makedirs("instance", exist_ok=True)
        with open(scenario_path, "w") as f:
            json.dump(scenario, f)
    else:
        engine = make_engine(settings.database_url)
        recompute_crm(make_session_factory(engine), utcnow())  # the kept data has aged since the last run
        engine.dispose()
    Redis.from_url(redis_url).delete(f"rq:queue:{settings.rq_queue}")

    python = sys.executable
    children.append(subprocess.Popen([python, "-m", "hub", "serve", "--port", str(args.port)], env=env))
    if not _wait_for_port(args.port):
        print("the web server did not start; see the log above", file=sys.stderr)
        _stop(children)
        return 1
    children.append(subprocess.Popen([python, "-m", "hub", "worker"], env=env))
    children.append(subprocess.Popen(
        [python, "-m", "hub", "simulate", "--port", str(args.sim_port), "--scenario", scenario_path,
         "--rate", str(args.rate), "--seed", str(args.seed), "--mean-talk", str(args.mean_talk)], env=env))
    print(
        "\n"
        f"  Switchboard demo is running: open http://127.0.0.1:{args.port}/\n"
        f"  Log in as an agent:      alice / {DEMO_PASSWORD}   (or bob / {DEMO_PASSWORD})\n"
        f"  Log in as a supervisor:  super / {DEMO_PASSWORD}\n"
        f"  Simulated callers arrive at {args.rate:g} per minute; {len(SIM_SKILLS)} simulated agents answer.\n"
        "  Press Ctrl-C to stop everything.\n",
        flush=True,
    )
    stop = {"now": False}

    def _handle(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)
    try:
        while not stop["now"]:
            if any(c.poll() is not None for c in children):
                print("a demo process stopped unexpectedly; shutting down", file=sys.stderr)
                break
            time.sleep(0.5)
    finally:
        _stop(children)
    print("Switchboard demo stopped.")
    return 0


def _stop(children: list[subprocess.Popen]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in reversed(children):
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
