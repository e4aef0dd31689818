"""Put an agent in front of a customer's call the way routing does, through the Flask app: the agent goes
available, a signed inbound call from the customer's number reaches a queue every agent serves, and routing
offers it to them (no carrier is needed until they accept)."""
from __future__ import annotations

from sqlalchemy import select

from hub.admin import add_queue
from hub.agent_flows import change_presence
from hub.db import transaction
from hub.models import Agent, Queue
from tests.conftest import ACCOUNT_SID, new_sid, sign

OPEN_QUEUE_NUMBER = "+14155550177"  # a queue with no skills: any agent may be offered its calls


def offer_call(app, login: str, caller: str) -> str:
    """Offer the agent `login` a call from the number `caller`; return its CallSid."""
    services = app.extensions["switchboard"]
    with transaction(services.sessions) as session:
        if session.scalar(select(Queue.id).where(Queue.name == "Anyone")) is None:
            add_queue(session, "Anyone", OPEN_QUEUE_NUMBER)
        agent_id = session.scalar(select(Agent.id).where(Agent.login == login))
    change_presence(services, agent_id, "available")
    sid = new_sid()
    params = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": caller, "To": OPEN_QUEUE_NUMBER,
              "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
    signature = sign(services.settings.public_url + "/webhooks/voice/incoming", params)
    response = app.test_client().post("/webhooks/voice/incoming", data=params,
                                      headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.data
    response.close()  # as a server does once the TwiML is sent: that wakes the router (hub.deferred_routing)
    assert app.extensions["deferred_router"].drain(), "the deferred router did not finish its round"
    with transaction(services.sessions) as session:
        agent = session.get(Agent, agent_id)
        assert (agent.work, agent.call_sid) == ("offered", sid), "routing did not offer the call to the agent"
    return sid
