"""Who may see a customer's data: an agent only that of the work in hand, a supervisor or admin anyone's.

The work an agent holds is the call they are offered, talking on or wrapping up (inbound, a transfer, a
callback or a campaign's call: its customer), and the campaign lead they preview before dialing (its
customer, when the lead is on file). The console's screen pop, the unknown caller's search and the REST API
all ask here; so does recording an order for a customer, which follows the same rule.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Lead, LeadStatus
from hub.errors import FlowError
from hub.models import Agent, Call
from routing.states import Work

if TYPE_CHECKING:
    from hub.call_controls import Actor

HOLDING_A_CALL = (Work.OFFERED.value, Work.ON_CALL.value, Work.WRAP_UP.value)


def holds_a_call(agent: Agent | None) -> bool:
    """Whether the agent has a call in hand: offered, talking or wrapping up."""
    return agent is not None and agent.call_sid is not None and agent.work in HOLDING_A_CALL


def customers_in_hand(session: Session, agent_id: int) -> set[int]:
    """The customers of the work the agent holds now: their call's, and the lead's they preview."""
    agent = session.get(Agent, agent_id)
    held: set[int | None] = set()
    if holds_a_call(agent):
        held.add(session.scalar(select(Call.customer_id).where(Call.sid == agent.call_sid)))
    held.update(session.scalars(select(Lead.customer_id).where(Lead.status == LeadStatus.PREVIEW.value,
                                                               Lead.preview_agent_id == agent_id)))
    return {customer_id for customer_id in held if customer_id is not None}


def may_see_customer(session: Session, actor: Actor, customer_id: int) -> bool:
    return actor.supervisor or customer_id in customers_in_hand(session, actor.id)


def check_customer_access(session: Session, actor: Actor, customer_id: int) -> None:
    """Refuse (403) an agent asking for a customer who is not the one of the work they hold."""
    if not may_see_customer(session, actor, customer_id):
        raise FlowError("you can see a customer's data only while you handle their call or preview their lead", 403)


def check_may_record_order(session: Session, actor: Actor, customer_id: int) -> None:
    """Refuse (403) an agent recording an order for a customer who is not the one of the work they hold."""
    if not may_see_customer(session, actor, customer_id):
        raise FlowError("you can record a customer's order only while you handle their call or preview their lead",
                        403)


def check_may_search(session: Session, actor: Actor) -> None:
    """Refuse (403) an agent who searches the customers without a call in hand (whose caller to identify)."""
    if not actor.supervisor and not holds_a_call(session.get(Agent, actor.id)):
        raise FlowError("you can search customers only to identify the caller of your current call", 403)
