"""Campaign settings validation, the campaigns REST API (auth, CSRF, CSV upload, export) and the CLI."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from sqlalchemy import select

from campaigns.admin import CampaignError, create_campaign, qualifies, update_campaign
from campaigns.models import Campaign, CampaignAgent, Lead
from hub.admin import add_agent
from hub.app import create_app
from hub.db import transaction
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, REDIS_URL, ROOT, make_settings

SCRIPT = {
    "questions": [
        {"key": "owner", "text": "Do you own your home?", "type": "yes_no"},
        {"key": "roof", "text": "Roof type?", "type": "choice", "options": ["tile", "metal", "shingle"]},
        {"key": "bill", "text": "Monthly power bill?", "type": "number"},
        {"key": "notes", "text": "Anything else?", "type": "text"},
    ],
    "qualify": [{"key": "owner", "equals": True}, {"key": "roof", "in": ["tile", "shingle"]},
                {"key": "bill", "min": 100}],
}


# ---------------------------------------------------------------- settings (pure and against a database)


def test_qualifies_needs_every_rule_to_hold():
    good = {"owner": "yes", "roof": "tile", "bill": "150"}
    assert qualifies(SCRIPT, good)
    assert not qualifies(SCRIPT, {**good, "owner": False})
    assert not qualifies(SCRIPT, {**good, "roof": "metal"})
    assert not qualifies(SCRIPT, {**good, "bill": 99})
    assert not qualifies(SCRIPT, {"owner": True, "roof": "tile"})  # unanswered
    assert qualifies({"questions": [], "qualify": []}, {})


def test_a_campaign_gets_compliant_defaults_and_an_abandon_message_naming_seller_and_number(db):
    campaign = create_campaign(db, {"name": "Solar", "caller_id": "(415) 555-0100", "script": SCRIPT})
    assert campaign.caller_id == "+14155550100" and campaign.status == "draft" and campaign.mode == "progressive"
    assert campaign.abandon_target == 0.03 and campaign.ring_timeout_s == 25
    assert "Solar" in campaign.abandon_message and "+14155550100" in campaign.abandon_message
    update_campaign(db, campaign, {"caller_id": "+14155550199"})
    assert "+14155550199" in campaign.abandon_message  # the default message follows the number


@pytest.mark.parametrize("values,setting", [
    ({"abandon_target": 0.05}, "abandon_target"),
    ({"abandon_target": 0}, "abandon_target"),
    ({"ring_timeout_s": 10}, "ring_timeout_s"),
    ({"mode": "robocall"}, "mode"),
    ({"schedule": {"timezone": "Mars/Olympus"}}, "schedule.timezone"),
    ({"schedule": {"days": [7]}}, "schedule.days"),
    ({"schedule": {"start": "21:00", "end": "09:00"}}, "schedule"),
    ({"machine_action": "message"}, "machine_message"),
    ({"retry_rules": {"busy": {"delay_s": -1}}}, "retry_rules.busy.delay_s"),
    ({"retry_rules": {"voicemail": {"delay_s": 1}}}, "retry_rules.voicemail"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"cost_per_lead": -1}, "cost_per_lead"),
    ({"amd": "yes"}, "amd"),
    ({"abandon_message": "Sorry we missed you"}, "abandon_message"),
    ({"territories": {"NY": {"rep": "Ann"}}}, "territories.NY.email"),
    ({"agents": ["nobody"]}, "agents"),
    ({"script": {"questions": [{"key": "q", "text": "?", "type": "choice"}]}}, "script.questions[0].options"),
    ({"script": {"questions": [], "qualify": [{"key": "missing", "equals": 1}]}}, "script.qualify[0]"),
    ({"colour": "red"}, "colour"),
])
def test_each_bad_setting_is_refused_by_name(db, values, setting):
    with pytest.raises(CampaignError) as info:
        create_campaign(db, {"name": "X", "caller_id": "+14155550100", **values})
    assert setting in [name for name, _ in info.value.problems] and info.value.status == 400


def test_all_problems_are_reported_together_and_a_taken_name_is_a_conflict(db):
    with pytest.raises(CampaignError) as info:
        create_campaign(db, {"name": "", "caller_id": "12", "mode": "x"})
    assert {name for name, _ in info.value.problems} == {"name", "caller_id", "mode"}
    create_campaign(db, {"name": "Solar", "caller_id": "+14155550100"})
    with pytest.raises(CampaignError) as info:
        create_campaign(db, {"name": "Solar", "caller_id": "+14155550100"})
    assert info.value.status == 409


def test_a_lower_abandon_target_and_agents_and_territories_are_kept(db):
    add_agent(db, "alice", "Alice", "password1")
    campaign = create_campaign(db, {
        "name": "Solar", "caller_id": "+14155550100", "abandon_target": 0.01, "agents": ["alice"],
        "territories": {"ny": {"rep": "Ann", "email": "ann@example.com"},
                        "100": {"rep": "Bo", "email": "bo@example.com", "webhook_url": "https://x.example/h"}},
        "machine_action": "message", "machine_message": "Call us back at 415 555 0100"})
    db.flush()
    assert campaign.abandon_target == 0.01 and set(campaign.territories) == {"NY", "100"}
    assert len(db.scalars(select(CampaignAgent)).all()) == 1


# ---------------------------------------------------------------- the API


@pytest.fixture
def app(database_url, redis_client):
    app = create_app(make_settings(database_url))
    with transaction(app.extensions["switchboard"].sessions) as session:
        add_agent(session, "ana", "Ana Agent", "password1", "agent")
        add_agent(session, "bob", "Bob Agent", "password1", "agent")
        add_agent(session, "sue", "Sue Supervisor", "password2", "supervisor")
    yield app
    app.extensions["switchboard"].close()


def bearer(client, login, password):
    response = client.post("/api/v1/auth/token", json={"login": login, "password": password})
    return {"Authorization": "Bearer " + response.get_json()["token"]}


def test_campaign_writes_need_a_supervisor_and_agents_read_only_their_campaigns(app):
    client = app.test_client()
    sue, ana, bob = bearer(client, "sue", "password2"), bearer(client, "ana", "password1"), \
        bearer(client, "bob", "password1")
    body = {"name": "Solar", "caller_id": "+14155550100", "agents": ["ana"], "script": SCRIPT}
    assert client.post("/api/v1/campaigns", json=body).status_code == 401
    assert client.post("/api/v1/campaigns", json=body, headers=ana).status_code == 403
    created = client.post("/api/v1/campaigns", json=body, headers=sue)
    assert created.status_code == 201 and created.get_json()["agents"] == ["ana"]
    cid = created.get_json()["id"]
    assert client.get(f"/api/v1/campaigns/{cid}", headers=ana).get_json()["name"] == "Solar"
    assert client.get(f"/api/v1/campaigns/{cid}", headers=bob).status_code == 403
    assert client.get("/api/v1/campaigns", headers=ana).status_code == 403
    assert client.patch(f"/api/v1/campaigns/{cid}", json={"mode": "preview"}, headers=ana).status_code == 403
    bad = client.patch(f"/api/v1/campaigns/{cid}", json={"abandon_target": 0.1}, headers=sue)
    assert bad.status_code == 400 and bad.get_json()["problems"][0]["setting"] == "abandon_target"
    assert client.patch(f"/api/v1/campaigns/{cid}", json={"mode": "preview"}, headers=sue).get_json()["mode"] == \
        "preview"
    assert [c["name"] for c in client.get("/api/v1/campaigns", headers=sue).get_json()["campaigns"]] == ["Solar"]


def test_a_csv_upload_returns_the_report_and_leads_page_and_export(app):
    client = app.test_client()
    sue = bearer(client, "sue", "password2")
    cid = client.post("/api/v1/campaigns", json={"name": "Solar", "caller_id": "+14155550100"},
                      headers=sue).get_json()["id"]
    client.post("/api/v1/dnc", json={"phone": "2125550102", "reason": "stop"}, headers=sue)
    body = "phone,first_name,plan\n2125550101,Ada,=1+1\n2125550102,Bo,\nnope,Cy,\n"
    agent = bearer(client, "ana", "password1")
    assert client.post(f"/api/v1/campaigns/{cid}/leads", data=body, content_type="text/csv",
                       headers=agent).status_code == 403
    report = client.post(f"/api/v1/campaigns/{cid}/leads", data=body, content_type="text/csv", headers=sue)
    assert report.status_code == 200
    assert report.get_json() == {"imported": 2, "duplicates": 0, "dnc_flagged": 1, "linked_to_customers": 0,
                                 "rejected": [{"line": 4, "reason": report.get_json()["rejected"][0]["reason"]}]}
    one = client.post(f"/api/v1/campaigns/{cid}/leads", json={"phone": "2125550103"}, headers=sue)
    assert one.status_code == 201 and one.get_json()["phone"] == "+12125550103"
    assert client.post(f"/api/v1/campaigns/{cid}/leads", json={"phone": "2125550103"}, headers=sue).status_code == 409
    page = client.get(f"/api/v1/campaigns/{cid}/leads?skip_code=dnc_internal", headers=sue).get_json()
    assert page["total"] == 1 and page["leads"][0]["phone"] == "+12125550102"
    assert client.get(f"/api/v1/campaigns/{cid}/leads?limit=2", headers=sue).get_json()["total"] == 3
    exported = client.get(f"/api/v1/campaigns/{cid}/leads.csv", headers=sue)
    assert exported.mimetype == "text/csv" and "'=1+1" in exported.get_data(as_text=True)
    assert client.get("/api/v1/campaigns/999/leads", headers=sue).status_code == 404


def test_dnc_endpoints_add_list_remove_and_import_the_registry(app):
    client = app.test_client()
    sue, ana = bearer(client, "sue", "password2"), bearer(client, "ana", "password1")
    assert client.post("/api/v1/dnc", json={"phone": "2125550101"}).status_code == 401
    assert client.post("/api/v1/dnc", json={"phone": "2125550101", "reason": "said stop"},
                       headers=ana).status_code == 201  # an agent honours "stop calling" at once
    assert client.get("/api/v1/dnc", headers=ana).status_code == 403
    listed = client.get("/api/v1/dnc?phone=(212) 555-0101", headers=sue).get_json()
    assert listed["total"] == 1 and listed["registry"]["stale"] is True
    assert client.delete("/api/v1/dnc/%2B12125550101?reason=x", headers=ana).status_code == 403
    assert client.delete("/api/v1/dnc/%2B12125550101", headers=sue).status_code == 400  # no reason
    assert client.delete("/api/v1/dnc/%2B12125550101?reason=opted%20in", headers=sue).status_code == 200
    assert client.get("/api/v1/dnc", headers=sue).get_json()["total"] == 0
    no_date = client.post("/api/v1/dnc/registry", data="phone\n2125550109\n", content_type="text/csv", headers=sue)
    assert no_date.status_code == 400
    today = app.extensions["switchboard"].clock().date().isoformat()
    imported = client.post(f"/api/v1/dnc/registry?extract_date={today}", data="phone\n2125550109\n",
                           content_type="text/csv", headers=sue)
    assert imported.status_code == 200 and imported.get_json()["rows"] == 1
    assert client.get("/api/v1/dnc", headers=sue).get_json()["registry"]["stale"] is False


def test_api_writes_with_a_session_cookie_need_the_csrf_token(app):
    client = app.test_client()
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', client.get("/login").data).group(1).decode()
    assert client.post("/login", data={"login": "sue", "password": "password2", "csrf_token": csrf}).status_code == 302
    body = {"name": "Solar", "caller_id": "+14155550100"}
    assert client.post("/api/v1/campaigns", json=body).status_code == 400
    assert client.post("/api/v1/campaigns", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 400
    assert client.post("/api/v1/campaigns", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    assert client.get("/api/v1/campaigns").status_code == 200  # reads need no token


# ---------------------------------------------------------------- the CLI


def hub(args, env):
    return subprocess.run([sys.executable, "-m", "hub", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_cli_creates_a_campaign_imports_with_exit_codes_and_exports(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env["SWITCHBOARD_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    assert hub(["db", "upgrade"], env).returncode == 0
    settings = tmp_path / "solar.json"
    settings.write_text('{"abandon_target": 0.02, "schedule": {"timezone": "America/Chicago"}}')
    added = hub(["campaigns", "add", "Solar", "--caller-id", "415-555-0100", "--mode", "preview",
                 "--from-json", str(settings)], env)
    assert added.returncode == 0, added.stderr
    refused = hub(["campaigns", "add", "Bad", "--caller-id", "12"], env)
    assert refused.returncode == 2 and "caller_id" in refused.stderr
    good = tmp_path / "good.csv"
    good.write_text("phone,first_name\n2125550101,Ada\n2125550102,Bo\n")
    result = hub(["leads", "import", "Solar", str(good)], env)
    assert result.returncode == 0 and "imported 2, duplicates 0" in result.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("phone,first_name\n2125550103,Cy\nnot a number,Di\n2125550101,Ada\n")
    result = hub(["leads", "import", "Solar", str(bad)], env)
    assert result.returncode == 2
    assert "imported 1, duplicates 1" in result.stdout and "line 3: phone" in result.stdout
    assert hub(["dnc", "add", "2125550101", "--reason", "stop"], env).returncode == 0
    listing = hub(["campaigns", "list"], env)
    assert "Solar" in listing.stdout and "3 leads" in listing.stdout
    out = tmp_path / "out.csv"
    assert hub(["leads", "export", "Solar", "-o", str(out)], env).returncode == 0
    exported = out.read_text()
    assert "+12125550101" in exported and "dnc_internal" in exported
    env.update(SWITCHBOARD_REDIS_URL=REDIS_URL, SWITCHBOARD_RQ_QUEUE=f"cli-{tmp_path.name}",
               SWITCHBOARD_TWILIO_ACCOUNT_SID=ACCOUNT_SID, SWITCHBOARD_TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    started = hub(["campaigns", "start", "Solar"], env)
    assert started.returncode == 0 and "Solar is running" in started.stdout, started.stderr
    status = json.loads(hub(["campaigns", "status", "Solar"], env).stdout)
    assert status["status"]["status"] == "running" and status["funnel"]["funnel"]["leads"] == 3
    assert hub(["campaigns", "pause", "Solar"], env).returncode == 0
    refused = hub(["campaigns", "pause", "Solar"], env)
    assert refused.returncode == 2 and "cannot pause a campaign that is paused" in refused.stderr
    assert hub(["campaigns", "stop", "Solar"], env).returncode == 0
    registry = tmp_path / "registry.csv"
    registry.write_text("phone\n2125550102\n")
    assert hub(["dnc", "import-registry", str(registry), "--date", "2026-11-01"], env).returncode == 0
    from hub.db import make_engine, make_session_factory

    engine = make_engine(env["SWITCHBOARD_DATABASE_URL"])
    with make_session_factory(engine, check_routing_cache=True)() as session:
        campaign = session.scalar(select(Campaign))
        assert campaign.mode == "preview" and campaign.abandon_target == 0.02
        assert campaign.schedule["timezone"] == "America/Chicago"
        assert session.scalar(select(Lead.skip_code).where(Lead.phone == "+12125550102")) == "dnc_registry"
        assert session.scalar(select(Lead.list_name).where(Lead.phone == "+12125550101")) == "good"  # the file
    engine.dispose()
