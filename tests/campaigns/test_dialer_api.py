"""Running a campaign through the API: start, pause, resume and stop take effect at once (the pacing job is
scheduled on start, a paused campaign dials nothing), the live figures say why leads are not dialed, and
field sales report handoff outcomes. On SQLite and PostgreSQL, with real Redis."""
from __future__ import annotations

import csv
import io


from campaigns import dialer
from campaigns.handoff import create_handoff
from campaigns.models import Campaign, DncEntry, Lead
from hub.columns import utcnow
from hub.db import transaction
from tests.campaigns.test_campaign_api import app, bearer  # noqa: F401  (app is a fixture)


def _seed(app):
    with transaction(app.extensions["switchboard"].sessions) as s:
        campaign = Campaign(name="Solar", caller_id="+14155550100", abandon_message="Solar, 415 555 0100",
                            requires_registry=False, territories={"*": {"rep": "Pat"}},
                            schedule={"timezone": "UTC", "days": list(range(7)), "start": "00:00", "end": "23:59"})
        s.add(campaign)
        s.flush()
        dnc = Lead(campaign_id=campaign.id, phone="+12125550011", first_name="=HYPERLINK(\"x\")")
        s.add(dnc)
        s.add(DncEntry(phone="+12125550011", source="internal"))
        s.flush()
        return campaign.id, dnc.id


def test_start_pause_resume_stop_take_effect_at_once(app, redis_client):  # noqa: F811
    client = app.test_client()
    sue, ana = bearer(client, "sue", "password2"), bearer(client, "ana", "password1")
    campaign_id, _ = _seed(app)
    services = app.extensions["switchboard"]
    assert client.post(f"/api/v1/campaigns/{campaign_id}/start", headers=ana).status_code == 403
    assert client.post(f"/api/v1/campaigns/{campaign_id}/pause", headers=sue).status_code == 409  # a draft
    response = client.post(f"/api/v1/campaigns/{campaign_id}/start", headers=sue)
    assert response.status_code == 200 and response.get_json()["status"] == "running"
    scheduled = [j.decode() for j in redis_client.zrange(f"rq:scheduled:{services.settings.rq_queue}", 0, -1)]
    assert any(job.startswith(f"pace-{campaign_id}-") for job in scheduled)  # the pacing loop starts now
    assert client.post(f"/api/v1/campaigns/{campaign_id}/start", headers=sue).status_code == 409
    assert client.post(f"/api/v1/campaigns/{campaign_id}/pause", headers=sue).get_json()["status"] == "paused"
    assert dialer.pace(services, campaign_id).running is False  # a paused campaign dials nothing
    assert client.post(f"/api/v1/campaigns/{campaign_id}/resume", headers=sue).get_json()["status"] == "running"
    assert client.post(f"/api/v1/campaigns/{campaign_id}/stop", headers=sue).get_json()["status"] == "stopped"
    assert client.post("/api/v1/campaigns/999/start", headers=sue).status_code == 404


def test_the_api_says_why_a_lead_is_not_dialed(app):  # noqa: F811
    client = app.test_client()
    sue = bearer(client, "sue", "password2")
    campaign_id, lead_id = _seed(app)
    why = client.get(f"/api/v1/campaigns/{campaign_id}/leads/{lead_id}/why", headers=sue).get_json()
    codes = [r["code"] for r in why["reasons"]]
    assert why["may_dial_now"] is False and "dnc_internal" in codes and "campaign_not_running" in codes
    assert why["time_zones"] == ["America/New_York"]
    status = client.get(f"/api/v1/campaigns/{campaign_id}/status", headers=sue).get_json()
    assert status["leads"]["total"] == 1 and status["abandon"]["target"] == 0.03
    assert client.get(f"/api/v1/campaigns/{campaign_id}/leads/12345/why", headers=sue).status_code == 404


def test_field_sales_report_outcomes_and_the_handoffs_export_is_formula_safe(app):  # noqa: F811
    client = app.test_client()
    sue, ana = bearer(client, "sue", "password2"), bearer(client, "ana", "password1")
    campaign_id, lead_id = _seed(app)
    with transaction(app.extensions["switchboard"].sessions) as s:
        lead = s.get(Lead, lead_id)
        handoff_id = create_handoff(s, lead, s.get(Campaign, campaign_id), None, "@SUM(1)", utcnow(), None).id
    listed = client.get(f"/api/v1/handoffs?campaign_id={campaign_id}", headers=sue).get_json()["handoffs"]
    assert [h["id"] for h in listed] == [handoff_id] and listed[0]["rep"]["name"] == "Pat"
    assert client.get("/api/v1/handoffs", headers=ana).status_code == 403
    url = f"/api/v1/handoffs/{handoff_id}/outcome"
    assert client.post(url, json={"outcome": "won"}, headers=sue).status_code == 400  # no amount
    won = client.post(url, json={"outcome": "won", "amount": 1250.5}, headers=sue).get_json()
    assert won["outcome"] == "won" and won["amount"] == 1250.5
    assert client.post(url, json={"outcome": "lost", "reason": "x"}, headers=sue).status_code == 409
    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/handoffs.csv", headers=sue).get_data(as_text=True))))
    assert rows[0]["first_name"].startswith("'=") and rows[0]["note"] == "'@SUM(1)"
    assert rows[0]["phone"] == "+12125550011" and rows[0]["outcome"] == "won"
    funnel = client.get(f"/api/v1/campaigns/{campaign_id}/funnel", headers=sue).get_json()
    assert funnel["funnel"]["won"] == 1 and funnel["funnel"]["revenue"] == 1250.5
