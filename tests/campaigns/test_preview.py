"""Preview mode's flows on SQLite and PostgreSQL with real Redis: a previewed lead that may no longer be dialed
(here: opted out while the agent read it) is refused, goes back to the list and says why."""
from __future__ import annotations

import pytest

from campaigns import preview
from campaigns.dnc import add_opt_out
from campaigns.models import Campaign, DialAttempt, Lead
from hub.admin import add_agent
from hub.columns import utcnow
from hub.db import transaction
from hub.errors import FlowError
from hub.services import build_services
from tests.campaigns.helpers import ALL_WEEK
from tests.conftest import make_settings


@pytest.fixture
def services(database_url, redis_client):
    services = build_services(make_settings(database_url))
    yield services
    services.close()


def test_a_lead_opted_out_during_its_preview_is_refused_and_released_with_its_reason(services):
    with transaction(services.sessions) as s:
        agent = add_agent(s, "ana", "Ana", "password1")
        agent.presence = "available"
        campaign = Campaign(name="Solar", caller_id="+14155550100", mode="preview", status="running",
                            requires_registry=False, schedule=ALL_WEEK, abandon_message="Solar")
        s.add(campaign)
        s.flush()
        lead = Lead(campaign_id=campaign.id, phone="+12125550011", status="preview", preview_agent_id=agent.id,
                    next_check_at=utcnow())
        s.add(lead)
        s.flush()
        agent_id, lead_id = agent.id, lead.id
        add_opt_out(s, lead.phone, "stop calling", utcnow())
    with pytest.raises(FlowError, match="may not be dialed now"):
        preview.dial(services, agent_id, lead_id)
    with transaction(services.sessions) as s:
        lead = s.get(Lead, lead_id)
        assert lead.status == "ready" and lead.preview_agent_id is None and lead.skip_code == "dnc_internal"
        assert s.query(DialAttempt).count() == 0
    with pytest.raises(FlowError, match="no longer yours"):
        preview.dial(services, agent_id, lead_id)
