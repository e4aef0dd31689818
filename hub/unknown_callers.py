"""The screen pop of an unknown caller: search the customers, name the caller, or merge them into a customer.

An agent may change only the caller of the call they are offered, talking on or wrapping up; a supervisor any
call's. After a change the consoles showing that call get a fresh snapshot, so the screen pop refreshes.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.call_controls import Actor
from hub.customer_access import check_may_search, holds_a_call
from hub.customers import customer_dict, merge_unknown_caller, name_unknown_caller, search_customers
from hub.db import transaction
from hub.effects import push
from hub.errors import FlowError
from hub.models import Agent, Call, Customer, Leg
from hub.services import Services

log = logging.getLogger(__name__)


def _callers_call(session: Session, actor: Actor, call_sid: str) -> Call:
    call = session.scalar(select(Call).where(Call.sid == call_sid, Call.leg == Leg.CUSTOMER.value))
    if call is None:
        raise FlowError("there is no such call", 404)
    if not actor.supervisor:
        agent = session.get(Agent, actor.id)
        if not holds_a_call(agent) or agent.call_sid != call_sid:
            raise FlowError("you can only change the caller of your own current call", 403)
    if call.customer is None:
        raise FlowError("the caller withheld their number: there is nobody to name or merge", 400)
    return call


def _agents_showing(session: Session, customer_ids: set[int]) -> set[int]:
    """Agents whose current call is with one of these customers (their screen pop must refresh)."""
    rows = session.execute(select(Agent.id).join(Call, Call.sid == Agent.call_sid)
                           .where(Call.customer_id.in_(customer_ids)))
    return {agent_id for (agent_id,) in rows}


def find_customers(services: Services, actor: Actor, query: str) -> list[dict[str, Any]]:
    """Customers matching a name, an email or a number, for the unknown caller's screen pop.

    An agent sees customer data only for the work in hand (hub.customer_access): they may search while they
    hold a call (offered, talking or wrapping up), to identify its caller; a supervisor may search at any time."""
    with transaction(services.sessions) as session:
        check_may_search(session, actor)
        return [customer_dict(c) for c in search_customers(session, query, services.settings.default_region)]


def name_caller(services: Services, actor: Actor, call_sid: str, name: str, email: str | None) -> dict[str, Any]:
    """Create a customer (name, email) from the unknown caller of a call."""
    with transaction(services.sessions) as session:
        call = _callers_call(session, actor, call_sid)
        try:
            customer = name_unknown_caller(session, call.customer, name, email)
        except ValueError as exc:
            raise FlowError(str(exc), 400) from None
        result = customer_dict(customer)
        showing = _agents_showing(session, {customer.id})
    log.info("agent %s named the unknown caller of call %s (customer %s)", actor.id, call_sid, result["id"])
    push(services, showing)
    return result


def merge_caller(services: Services, actor: Actor, call_sid: str, customer_id: int) -> dict[str, Any]:
    """Merge the unknown caller of a call into an existing customer."""
    now = services.clock()
    with transaction(services.sessions) as session:
        call = _callers_call(session, actor, call_sid)
        target = session.get(Customer, customer_id)
        if target is None:
            raise FlowError("there is no such customer", 404)
        unknown_id = call.customer_id
        showing = _agents_showing(session, {unknown_id})
        try:
            merged = merge_unknown_caller(session, call.customer, target, now, agent_id=actor.id)
        except ValueError as exc:
            raise FlowError(str(exc), 400) from None
        result = customer_dict(merged)
        showing |= _agents_showing(session, {merged.id})
    log.info("agent %s merged customer %s into %s (call %s)", actor.id, unknown_id, customer_id, call_sid)
    push(services, showing)
    return result
