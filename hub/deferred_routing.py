"""Routing what the carrier's webhooks recorded, once their answers have gone out.

An incoming call and a caller's hang-up need the routing lock and the whole routing state, which would put
every webhook's answer behind every other decision. So those two webhooks only record what happened:

- an incoming call to an open queue is stored "arriving" (not yet seen by the engine), and its TwiML goes
  out at once;
- a plain inbound caller's final status (not a transfer, a campaign call or a caller waiting for a callback)
  is stored on the call, which stays in its routing state until routing sees the hang-up.

`route_deferred` then runs every such call through the engine as one batch: one lock, one load of the state
and one write however many came in meanwhile. The web process calls it once an answer is sent
(webhooks.views), and the sweeper calls it for what a dead process left behind, so nothing is left out.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session, lazyload

from crm.models import CustomerValue
from hub.db import lock_routing, transaction
from hub.effects import carry_out
from hub.models import Call, Customer, Leg, Queue
from hub.routing_store import ACTIVE_CALL_STATES, decide_and_store_many, merge_decisions
from hub.services import Services
from hub.transfers import end_with_customer
from routing import engine
from routing.states import FINAL_STATUSES, CallState, RoutingError

log = logging.getLogger(__name__)

ARRIVING = "arriving"  # recorded by the incoming webhook, not yet seen by the routing engine
BATCH = 500


def _plain_inbound_caller() -> ColumnElement[bool]:
    """A plain inbound caller's call: not a campaign call, a transfer row or a caller waiting for a callback."""
    return and_(Call.leg == Leg.CUSTOMER.value, Call.campaign_id.is_(None), Call.queue_id.is_not(None),
                Call.transfer_kind.is_(None), Call.callback.is_(False))


def hang_up_can_wait() -> ColumnElement[bool]:
    """Whether a final status of this call is routed later by `route_deferred` rather than in its webhook, as a
    SQL condition on `Call` (hub.call_flows.record_status reads it with the call): a plain inbound caller still
    arriving or in routing (not one whose routing already ended, as after a cold transfer, where only the
    transfer row is left to end). `route_deferred` finds such a hang-up again with its arrival (`_arrivals`)
    or, once routing has seen the call, on its own (`_hung_up`)."""
    return and_(_plain_inbound_caller(), Call.routing_state.in_([ARRIVING, *ACTIVE_CALL_STATES]))


def _hung_up():
    """Plain inbound callers whose final status is stored but not yet routed: those `hang_up_can_wait` lets
    wait, less the arriving ones, whose hang-up is routed with their arrival (`_arrivals`)."""
    return _plain_inbound_caller(), Call.routing_state.in_(ACTIVE_CALL_STATES), Call.status.in_(FINAL_STATUSES)


def _arrivals(session: Session, older_than: datetime | None, sid: str | None = None) -> list:
    query = (
        select(Call.sid, Queue.name, Call.created_at, Call.status, Call.preferred_agent_ids, Customer.value_tier,
               CustomerValue.clv_cents)
        .join(Queue, Call.queue_id == Queue.id)
        .outerjoin(Customer, Call.customer_id == Customer.id)
        .outerjoin(CustomerValue, CustomerValue.customer_id == Call.customer_id)
        .where(Call.routing_state == ARRIVING, Call.leg == Leg.CUSTOMER.value)
        .order_by(Call.created_at, Call.id)
        .limit(BATCH)
    )
    if older_than is not None:
        query = query.where(Call.created_at < older_than)
    if sid is not None:
        query = query.where(Call.sid == sid)
    return list(session.execute(query))


def _hang_ups(session: Session, older_than: datetime | None, sid: str | None = None) -> list[Call]:
    query = select(Call).options(lazyload("*")).where(*_hung_up()).order_by(Call.ended_at, Call.id).limit(BATCH)
    if older_than is not None:
        query = query.where(or_(Call.ended_at.is_(None), Call.ended_at < older_than))
    if sid is not None:
        query = query.where(Call.sid == sid)
    return list(session.scalars(query))


def _events(arrivals: list, hang_ups: list[Call]) -> list[engine.Event]:
    events: list[engine.Event] = []
    for sid, queue, created_at, status, preferred, tier, clv_cents in arrivals:
        events.append(engine.CallArrived(sid, queue, tier, tuple(preferred or ()),
                                         clv_cents / 100 if clv_cents else None, arrived_at=created_at))
        if status in FINAL_STATUSES:  # the caller hung up before routing saw the call
            events.append(engine.CallHungUp(sid))
    events.extend(engine.CallHungUp(call.sid) for call in hang_ups)
    return events


def has_deferred(services: Services) -> bool:
    """A cheap look without the lock: is anything waiting for `route_deferred`?"""
    with transaction(services.sessions) as session:
        arriving = session.scalar(select(Call.id).where(Call.routing_state == ARRIVING).limit(1))
        return arriving is not None or session.scalar(select(Call.id).where(*_hung_up()).limit(1)) is not None


def _route(services: Services, cutoff: datetime | None, sid: str | None = None) -> tuple[int, bool]:
    """One batch (or the one call `sid`): how many calls it routed, and whether a batch was full."""
    now = services.clock()
    with transaction(services.sessions) as session:
        lock_routing(session)  # before reading the rows: two processes never route one call twice
        arrivals, hang_ups = _arrivals(session, cutoff, sid), _hang_ups(session, cutoff, sid)
        if not arrivals and not hang_ups:
            return 0, False
        config = services.routing_config
        decisions = [decide_and_store_many(session, _events(arrivals, hang_ups), now, config)]
        for call in hang_ups:  # the caller is gone: so are the transfers still routing them
            decisions.extend(end_with_customer(session, call, call.ended_at or now, now, config))
    carry_out(services, merge_decisions(decisions))
    return len(arrivals) + len(hang_ups), len(arrivals) == BATCH or len(hang_ups) == BATCH


def _route_one_by_one(services: Services, cutoff: datetime | None) -> int:
    """After a batch the engine refused: route its calls one at a time, and take out of deferred routing a
    call the engine refuses on its own (logged, marked `routing_error`), so it cannot hold up the others."""
    with transaction(services.sessions) as session:
        sids = [row.sid for row in _arrivals(session, cutoff)] + [call.sid for call in _hang_ups(session, cutoff)]
    routed = 0
    for sid in sids:
        try:
            routed += _route(services, cutoff, sid)[0]
        except RoutingError:
            log.exception("routing refused call %s; it is taken out of line", sid)
            with transaction(services.sessions) as session:
                lock_routing(session)
                session.execute(update(Call).where(Call.sid == sid).values(
                    routing_state=CallState.ENDED.value, routing_outcome="routing_error"))
    return routed


def route_deferred(services: Services, older_than: timedelta | None = None) -> int:
    """Route every deferred arrival and hang-up (only those older than `older_than`, for the sweeper);
    return how many calls were routed."""
    routed = 0
    while has_deferred(services):
        cutoff = services.clock() - older_than if older_than is not None else None
        try:
            count, full = _route(services, cutoff)
        except RoutingError:
            log.exception("the engine refused a batch of deferred routing; routing its calls one at a time")
            return routed + _route_one_by_one(services, cutoff)
        routed += count
        if not full:
            break
    return routed


class AfterAnswerRouter(threading.Thread):
    """One web process's router of what its webhooks deferred: a background thread woken once an answer is
    sent (`wake`). Calls recorded while it routes are taken in its next round, so a burst is routed in a few
    large batches; and no request thread is held up, nor the next request on its keep-alive connection."""

    def __init__(self, services: Services) -> None:
        super().__init__(name="deferred-router", daemon=True)
        self.services = services
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._rounds = threading.Condition()
        self._begun = self._ended = 0  # rounds

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        while True:
            self._wake.wait()
            if self._stopped.is_set():
                return
            self._wake.clear()
            with self._rounds:
                self._begun += 1
                round_ = self._begun
            try:
                route_deferred(self.services)
            except Exception:  # noqa: BLE001 - the answers are out; the sweeper routes what is left
                log.exception("routing after a webhook's answer failed; the sweeper will retry")
            finally:
                with self._rounds:
                    self._ended = round_
                    self._rounds.notify_all()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wake the router and wait for a round that starts after this call to end (so everything recorded
        before it is routed); False if that took longer than `timeout`."""
        with self._rounds:
            target = self._begun + 1
        self.wake()
        with self._rounds:
            return self._rounds.wait_for(lambda: self._ended >= target, timeout)

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
