"""Qualified leads go to the field sales rep of their territory as a signed JSON webhook, retried with
backoff until accepted and never sent twice; field sales report won or lost back."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from campaigns.handoff import create_handoff, deliver, deliver_due, record_outcome, territory_for
from campaigns.models import Campaign, Handoff, Lead
from hub.columns import utcnow
from hub.db import transaction
from hub.errors import FlowError
from hub.models import Customer, TimelineEntry
from hub.services import build_services
from tests.conftest import make_settings

SECRET = "field-sales-secret"
TERRITORIES = {"100": {"rep": "Nina (Manhattan)", "email": "nina@example.com"},
               "NY": {"rep": "Omar (New York State)"}, "*": {"rep": "Pat (everywhere else)"}}


class Receiver:
    """A field-sales endpoint: checks the signature, answers with the next status in `replies`."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                with receiver.lock:
                    status = receiver.replies.pop(0) if receiver.replies else 200
                    receiver.requests.append({"valid": hmac.compare_digest(expected, self.headers.get(
                        "X-Switchboard-Signature", "")), "delivery": self.headers["X-Switchboard-Delivery"],
                        "body": json.loads(body), "status": status})
                threading.Event().wait(0.2)  # a slow endpoint, so concurrent senders would overlap
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/leads"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver([500])
    yield r
    r.close()


@pytest.fixture
def services(database_url, redis_client, receiver):
    services = build_services(make_settings(database_url, handoff_secret=SECRET, handoff_url=receiver.url))
    yield services
    services.close()


def test_the_territory_is_the_longest_postal_prefix_then_the_state_then_everyone_else():
    assert territory_for(TERRITORIES, "NY", "10027")[0] == "100"
    assert territory_for(TERRITORIES, "NY", "14201")[0] == "NY"
    assert territory_for(TERRITORIES, "ny", None)[0] == "NY"
    assert territory_for(TERRITORIES, "CA", "94110")[1]["rep"] == "Pat (everywhere else)"
    assert territory_for({"NY": {}}, "CA", "94110") == (None, {})


def _qualified_lead(session, **lead_fields):
    customer = Customer(name="Alan Turing")
    campaign = Campaign(name="Solar", caller_id="+14155550100", territories=TERRITORIES, abandon_message="Solar")
    session.add_all([customer, campaign])
    session.flush()
    lead = Lead(campaign_id=campaign.id, phone="+12125550011", first_name="Alan", customer_id=customer.id,
                answers={"owner": "yes"}, **lead_fields)
    session.add(lead)
    session.flush()
    return lead, campaign


def test_a_handoff_is_signed_retried_after_a_failure_and_never_sent_twice(services, receiver):
    now = utcnow()
    with transaction(services.sessions) as s:
        lead, campaign = _qualified_lead(s, postal_code="10027", state="NY")
        first = create_handoff(s, lead, campaign, None, "wants a quote", now, services.settings.handoff_url)
        again = create_handoff(s, lead, campaign, None, "second try", now, services.settings.handoff_url)
        assert again.id == first.id  # one handoff per lead
        handoff_id, customer_id = first.id, lead.customer_id
        assert first.rep_name == "Nina (Manhattan)" and first.territory == "100"

    assert deliver(services, handoff_id) == "pending"  # the endpoint answered 500
    assert deliver(services, handoff_id) == "busy"  # not due yet: backoff
    with transaction(services.sessions) as s:
        handoff = s.get(Handoff, handoff_id)
        assert handoff.attempts == 1 and handoff.last_error == "HTTP 500" and handoff.next_attempt_at > utcnow()
        handoff.next_attempt_at = utcnow() - timedelta(seconds=1)
    assert deliver_due(services) == 1
    assert deliver(services, handoff_id) == "busy" and deliver_due(services) == 0  # sent: never again
    assert [r["status"] for r in receiver.requests] == [500, 200]
    assert all(r["valid"] and r["delivery"] == str(handoff_id) for r in receiver.requests)
    body = receiver.requests[-1]["body"]
    assert body["lead"]["first_name"] == "Alan" and body["answers"] == {"owner": "yes"}
    assert body["note"] == "wants a quote" and body["rep"]["name"] == "Nina (Manhattan)"
    with transaction(services.sessions) as s:
        assert s.get(Handoff, handoff_id).status == "sent"
        summaries = [e.summary for e in s.query(TimelineEntry).filter_by(customer_id=customer_id)]
        assert any("handed to Nina" in text for text in summaries)


def test_two_workers_sending_the_same_handoff_at_once_send_it_once(services, receiver):
    receiver.replies = []
    with transaction(services.sessions) as s:
        lead, campaign = _qualified_lead(s)
        handoff_id = create_handoff(s, lead, campaign, None, "", utcnow(), services.settings.handoff_url).id
    results = []
    threads = [threading.Thread(target=lambda: results.append(deliver(services, handoff_id))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(receiver.requests) == 1 and sorted(results) == ["busy", "busy", "busy", "sent"]


def test_field_sales_report_won_or_lost_once(services):
    with transaction(services.sessions) as s:
        lead, campaign = _qualified_lead(s)
        handoff_id = create_handoff(s, lead, campaign, None, "", utcnow(), None).id
        assert s.get(Handoff, handoff_id).status == "listed"  # no webhook anywhere: listed only
    with transaction(services.sessions) as s:
        with pytest.raises(FlowError, match="amount"):
            record_outcome(s, handoff_id, "won", None, None, utcnow())
        with pytest.raises(FlowError, match="won or lost"):
            record_outcome(s, handoff_id, "maybe", None, None, utcnow())
    with transaction(services.sessions) as s:
        record_outcome(s, handoff_id, "won", 4200.0, None, utcnow())
    with transaction(services.sessions) as s:
        assert record_outcome(s, handoff_id, "won", 4200.0, None, utcnow()).amount == 4200.0  # a repeat: no-op
        with pytest.raises(FlowError) as refused:
            record_outcome(s, handoff_id, "lost", None, "too expensive", utcnow())
        assert refused.value.status == 409


def test_the_funnel_counts_each_step_and_prices_it_by_campaign_list_and_agent(services):
    from campaigns.models import DialAttempt
    from campaigns.stats import funnel_report
    from hub.admin import add_agent

    now = utcnow()
    with transaction(services.sessions) as s:
        ana = add_agent(s, "ana", "Ana", "password1")
        campaign = Campaign(name="Solar", caller_id="+14155550100", abandon_message="Solar", cost_per_lead=0.5,
                            cost_per_minute=0.02, cost_per_agent_hour=30.0, wrap_up_s=60)
        s.add(campaign)
        s.flush()
        leads = [Lead(campaign_id=campaign.id, phone=f"+1212555{1000 + i}", list_name="north" if i < 3 else "south")
                 for i in range(4)]
        s.add_all(leads)
        s.flush()
        # lead 0: contacted 150 s, qualified, won; lead 1: contacted 30 s, not interested; lead 2: busy
        for lead, outcome, talk in ((leads[0], "human", 150), (leads[1], "human", 30), (leads[2], "busy", 0)):
            joined = now if outcome == "human" else None
            s.add(DialAttempt(idempotency_key=f"{lead.id}:1", campaign_id=campaign.id, lead_id=lead.id, number=1,
                              status="ended", outcome=outcome, duration_s=talk, agent_id=ana.id if joined else None,
                              agent_joined_at=joined, ended_at=now + timedelta(seconds=talk)))
        leads[0].disposition, leads[1].disposition = "qualified", "not_interested"
        handoff = create_handoff(s, leads[0], campaign, ana.id, "", now, None)
        record_outcome(s, handoff.id, "won", 1000.0, None, now)
        report = funnel_report(s, campaign)
    assert report["funnel"] == {"leads": 4, "attempted": 3, "contacted": 2, "qualified": 1, "handed_off": 1,
                                "won": 1, "revenue": 1000.0}
    costs = report["costs"]
    # 4 leads x 0.50 + (3 + 1) minutes x 0.02 + (150 + 60 + 30 + 60) s x 30/h = 2.00 + 0.08 + 2.50
    assert costs["telephony_minutes"] == 4 and costs["total"] == pytest.approx(4.58)
    assert costs["per_contact"] == pytest.approx(2.29) and costs["per_sale"] == pytest.approx(4.58)
    assert report["by_list"]["north"]["contacted"] == 2 and report["by_list"]["south"]["attempted"] == 0
    assert report["by_agent"]["Ana"]["qualified"] == 1 and report["by_agent"]["Ana"]["contacted"] == 2
