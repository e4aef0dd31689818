"""The dialer's flows: plan one pacing step for a campaign and place its calls.

`pace` loads the campaign's live state, asks the pacing core how many lines to open, takes the next leads
the compliance gate allows (priority, then oldest), and writes one dial intent per lead, with its
idempotency key, in the same transaction. Only after the commit does `place` ask the carrier to dial. A
worker killed in between leaves intents that the reconciler settles: no lead is lost, none dialed twice.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns import gate
from campaigns.models import AttemptStatus, Campaign, CampaignStatus, DialAttempt, Lead, LeadStatus
from campaigns.ledger import abandon_budget
from campaigns.pacing import DialMode, DialStats, PacingInput, PacingPlan, lines_to_dial
from campaigns.throttle import CallRate
from hub.db import transaction
from hub.models import Agent, Call, Customer, Leg, Tier
from hub.routing_store import load_state
from hub.services import Services
from hub.telephony import TelephonyError
from routing.blending import outbound_agents

log = logging.getLogger(__name__)

MAX_LINES_PER_STEP = 50  # never open more lines than this in one pacing step, whatever the plan says
SCAN_BATCHES = 4  # lead batches the gate looks at per step before giving up until the next one


@dataclass(frozen=True)
class PaceResult:
    running: bool
    plan: PacingPlan | None = None
    intents: tuple[int, ...] = ()
    preview: bool = False  # a preview campaign: leads are handed to agents (campaigns.preview), not dialed


def load_stats(campaign: Campaign) -> DialStats:
    data = campaign.dial_stats or {}
    return DialStats(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
                        if k in {f.name for f in dataclasses.fields(DialStats)}})


def save_stats(campaign: Campaign, stats: DialStats) -> None:
    campaign.dial_stats = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(stats).items()}


def pace(services: Services, campaign_id: int) -> PaceResult:
    """Plan one pacing step and write its dial intents; the caller places them after this returns."""
    now = services.clock()
    rate = CallRate(services.redis, services.settings.twilio_account_sid or "local", services.settings.dial_cps)
    with transaction(services.sessions) as session:
        # one step of a campaign at a time (SQLite's BEGIN IMMEDIATE already serialises): a step asked for by
        # an event may start while the once-a-second step runs, and both would open lines for the same agents
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None or campaign.status != CampaignStatus.RUNNING.value:
            return PaceResult(running=False)
        mode = DialMode(campaign.mode)
        if mode is DialMode.PREVIEW:
            return PaceResult(running=True, preview=True)  # the agent dials from the preview card
        members = {a.agent_id for a in campaign.agents}
        state = load_state(session, now, services.routing_config)
        ringing = [now - at for (at,) in session.execute(
            select(DialAttempt.created_at).where(DialAttempt.campaign_id == campaign.id,
                                                 DialAttempt.status.in_([AttemptStatus.INTENT.value,
                                                                         AttemptStatus.DIALED.value])))]
        busy = [now - at for (at,) in session.execute(
            select(Call.created_at).join(Agent, Agent.call_sid == Call.sid)
            .where(Agent.id.in_(members), Agent.work.in_(["on_call", "wrap_up"])))] if members else []
        plan = lines_to_dial(PacingInput(
            mode=mode,
            agents_free=len(outbound_agents(state, members, now)),
            busy_elapsed_s=tuple(d.total_seconds() for d in busy),
            ringing_elapsed_s=tuple(d.total_seconds() for d in ringing),
            stats=load_stats(campaign),
            abandon=abandon_budget(session, campaign, now),
            max_lines=min(MAX_LINES_PER_STEP, rate.available(now.timestamp())),
        ))
        if plan.lines == 0:
            return PaceResult(running=True, plan=plan)
        chosen = take_leads(session, campaign, plan, now, services.settings.default_region)
        granted = rate.take(len(chosen), now.timestamp())
        intents = [write_intent(session, campaign, lead, covered, now) for lead, covered in chosen[:granted]]
    log.info("campaign %s: %s (%d intents)", campaign_id, plan.reason, len(intents))
    return PaceResult(running=True, plan=plan, intents=tuple(intents))


def take_leads(session: Session, campaign: Campaign, plan: PacingPlan, now: datetime,
                region: str) -> list[tuple[Lead, bool]]:
    """The next leads the gate allows, priority first then oldest; gold customers only on covered lines."""
    covered, ahead = plan.lines_covered, plan.lines_ahead
    rules = gate.campaign_rules(campaign, gate.latest_registry_date(session))
    chosen: list[tuple[Lead, bool]] = []
    seen: set[int] = set()
    batch = max(20, 4 * plan.lines)
    for _ in range(SCAN_BATCHES):
        if covered + ahead == 0:
            break
        query = (select(Lead).where(Lead.campaign_id == campaign.id, Lead.status == LeadStatus.READY.value,
                                    (Lead.next_check_at.is_(None)) | (Lead.next_check_at <= now))
                 .order_by(Lead.priority.desc(), Lead.id).limit(batch))
        if seen:
            query = query.where(Lead.id.not_in(seen))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)  # another worker's step keeps its leads
        leads = list(session.scalars(query))
        if not leads:
            break
        seen.update(lead.id for lead in leads)
        verdicts = gate.judge(session, campaign, leads, now, region, rules)
        gold = _gold_customers(session, leads)
        for lead in leads:  # every refusal in the batch is recorded, not only those before the last pick
            verdict = verdicts[lead.id]
            if not verdict.allowed:
                gate.record_skip(lead, verdict, now)
                continue
            gate.clear_skip(lead)
            if lead.customer_id in gold:
                if covered:
                    chosen.append((lead, True))
                    covered -= 1
                continue  # gold leads are never risked on a line dialed ahead of a free agent
            if ahead:
                chosen.append((lead, False))
                ahead -= 1
            elif covered:
                chosen.append((lead, True))
                covered -= 1
    return chosen


def _gold_customers(session: Session, leads: list[Lead]) -> set[int]:
    ids = {lead.customer_id for lead in leads if lead.customer_id is not None}
    if not ids:
        return set()
    return set(session.scalars(select(Customer.id).where(Customer.id.in_(ids),
                                                         Customer.value_tier == Tier.GOLD.value)))


def write_intent(session: Session, campaign: Campaign, lead: Lead, covered: bool, now: datetime,
                 agent_id: int | None = None) -> int:
    """Write the dial intent (its idempotency key numbers the lead's attempts) and mark the lead dialing.
    `agent_id`: the agent the answered call goes to first (preview mode)."""
    number = lead.attempts + 1
    attempt = DialAttempt(idempotency_key=f"{lead.id}:{number}", campaign_id=campaign.id, lead_id=lead.id,
                          number=number, covered=covered, created_at=now, agent_id=agent_id)
    session.add(attempt)
    lead.status = LeadStatus.DIALING.value
    lead.attempts = number
    lead.last_attempt_at = now
    session.flush()
    return attempt.id


def place(services: Services, attempt_id: int) -> str:
    """Ask the carrier to dial one intent. Returns 'dialed', 'rejected', 'unknown' (left for the reconciler) or 'skipped'."""
    with transaction(services.sessions) as session:
        attempt = session.get(DialAttempt, attempt_id)
        if attempt is None or attempt.status != AttemptStatus.INTENT.value:
            return "skipped"
        lead = session.get(Lead, attempt.lead_id)
        campaign = session.get(Campaign, attempt.campaign_id)
        if campaign.status != CampaignStatus.RUNNING.value:
            mark_not_placed(session, attempt, lead, "campaign no longer running")
            return "skipped"
        to, caller_id, ring, amd = lead.phone, campaign.caller_id, campaign.ring_timeout_s, campaign.amd
        detection = "DetectMessageEnd" if campaign.machine_action == "message" else "Enable"
        predictive = campaign.mode == DialMode.PREDICTIVE.value
    telephony = services.telephony
    query = f"?attempt={attempt_id}"
    extra = {}
    if amd:
        extra["machine_detection"] = detection
        if predictive:  # a person must reach an agent within 2 s: do not wait for the machine verdict
            extra.update(async_amd="true", async_amd_status_callback=telephony.url("/webhooks/outbound/amd" + query),
                         async_amd_status_callback_method="POST")
    try:
        placed = telephony.dial(to=to, from_=caller_id, voice_url=telephony.url("/webhooks/outbound/answer" + query),
                                status_url=telephony.url("/webhooks/outbound/status" + query), timeout=ring, **extra)
    except TelephonyError as exc:
        if not exc.rejected:
            log.warning("dial intent %s: the carrier's answer was lost; the reconciler will settle it", attempt_id)
            return "unknown"
        with transaction(services.sessions) as session:
            attempt = session.get(DialAttempt, attempt_id)
            if attempt.status == AttemptStatus.INTENT.value:
                mark_not_placed(session, attempt, session.get(Lead, attempt.lead_id), str(exc)[:300])
        return "rejected"
    with transaction(services.sessions) as session:
        attach_call(session, session.get(DialAttempt, attempt_id), placed.sid, placed.status, services.clock())
    return "dialed"


def attach_call(session: Session, attempt: DialAttempt, sid: str, status: str, now: datetime) -> Call:
    """Tie an intent to the carrier's call (from the REST answer, a status callback or the reconciler)."""
    if attempt.status == AttemptStatus.INTENT.value:
        attempt.status = AttemptStatus.DIALED.value
        attempt.dialed_at = now
    if attempt.call_sid is None:
        attempt.call_sid = sid
    call = session.scalar(select(Call).where(Call.sid == sid))
    if call is None:
        lead = session.get(Lead, attempt.lead_id)
        campaign = session.get(Campaign, attempt.campaign_id)
        call = Call(sid=sid, leg=Leg.CUSTOMER.value, direction="outbound-api", from_number=campaign.caller_id,
                    to_number=lead.phone, customer_id=lead.customer_id, campaign_id=campaign.id, status=status,
                    created_at=now)
        try:
            with session.begin_nested():
                session.add(call)
        except IntegrityError:  # a status callback created it a moment ago
            call = session.scalar(select(Call).where(Call.sid == sid))
    session.flush()
    return call


def mark_not_placed(session: Session, attempt: DialAttempt, lead: Lead, why: str) -> None:
    """The carrier never placed the call: the lead goes back to the list; the attempt has no outcome, so the
    gate does not count it (`lead.attempts` only numbers intents, keeping idempotency keys unique)."""
    attempt.status = AttemptStatus.NOT_PLACED.value
    attempt.error = why
    if lead.status == LeadStatus.DIALING.value:
        lead.status = LeadStatus.READY.value

