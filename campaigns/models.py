"""Outbound campaigns' data: campaigns and their agents, leads, dial attempts (the abandon ledger), do-not-call.

The database is the source of truth for anything that must not be lost or done twice: a dial attempt is
written with its idempotency key before the carrier is asked to place the call.
"""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
                        text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.columns import UTCDateTime, utcnow
from hub.models import Base


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class LeadStatus(StrEnum):
    READY = "ready"  # may be dialed when the compliance gate allows it
    PREVIEW = "preview"  # shown to one agent (preview mode), who dials or skips it
    DIALING = "dialing"  # one attempt in flight (intent written, call not settled)
    IN_CALL = "in_call"  # answered and with an agent (or being screened)
    DONE = "done"  # final: qualified, not interested, wrong number, do-not-call, out of attempts


class AttemptStatus(StrEnum):
    INTENT = "intent"  # written before the carrier was asked; no CallSid yet
    DIALED = "dialed"  # the carrier accepted it (CallSid known)
    ANSWERED = "answered"  # a person or a machine picked up
    ENDED = "ended"  # settled with an outcome
    NOT_PLACED = "not_placed"  # the carrier never placed it (the reconciler found no call)


class DncSource(StrEnum):
    INTERNAL = "internal"  # opt-outs: a disposition, the API, an import
    REGISTRY = "registry"  # a national registry extract
    COMPLAINT = "complaint"


DIAL_MODES = ("preview", "progressive", "predictive")
RETRY_OUTCOMES = ("busy", "no_answer", "machine", "failed", "callback")
DEFAULT_RETRY_RULES: dict[str, dict[str, int]] = {
    "busy": {"delay_s": 1800, "max_attempts": 3},
    "no_answer": {"delay_s": 4 * 3600, "max_attempts": 4},
    "machine": {"delay_s": 6 * 3600, "max_attempts": 3},
    "failed": {"delay_s": 24 * 3600, "max_attempts": 2},
    "callback": {"delay_s": 0, "max_attempts": 3},
}
DEFAULT_SCHEDULE: dict[str, Any] = {"timezone": "America/New_York", "days": [0, 1, 2, 3, 4, 5],
                                    "start": "09:00", "end": "20:00"}


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT.value)
    mode: Mapped[str] = mapped_column(String(16), default="progressive")
    caller_id: Mapped[str] = mapped_column(String(20))  # E.164
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON, default=lambda: dict(DEFAULT_SCHEDULE))
    script: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # questions and the "qualified" rules
    retry_rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=lambda: dict(DEFAULT_RETRY_RULES))
    max_attempts: Mapped[int] = mapped_column(Integer, default=6)
    abandon_target: Mapped[float] = mapped_column(Float, default=0.03)
    ring_timeout_s: Mapped[int] = mapped_column(Integer, default=25)
    amd: Mapped[bool] = mapped_column(Boolean, default=True)
    machine_action: Mapped[str] = mapped_column(String(16), default="hang_up")  # hang_up | message
    machine_message: Mapped[str | None] = mapped_column(Text)
    abandon_message: Mapped[str] = mapped_column(Text, default="")
    wrap_up_s: Mapped[int] = mapped_column(Integer, default=30)
    team: Mapped[str | None] = mapped_column(String(64))
    territories: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # region/postal prefix -> rep
    cost_per_lead: Mapped[float] = mapped_column(Float, default=0.0)
    cost_per_minute: Mapped[float] = mapped_column(Float, default=0.0)
    cost_per_agent_hour: Mapped[float] = mapped_column(Float, default=0.0)
    requires_registry: Mapped[bool] = mapped_column(Boolean, default=True)
    dial_stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the pacing core's measured rates
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    agents: Mapped[list[CampaignAgent]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class CampaignAgent(Base):
    __tablename__ = "campaign_agents"
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone", name="uq_leads_campaign_phone"),
        Index("ix_leads_dialable", "campaign_id", "status", "next_check_at"),
        # partial: most leads have neither, and every index costs a big import time
        Index("ix_leads_customer_id", "customer_id", sqlite_where=text("customer_id IS NOT NULL"),
              postgresql_where=text("customer_id IS NOT NULL")),
        Index("ix_leads_preview_agent_id", "preview_agent_id", sqlite_where=text("preview_agent_id IS NOT NULL"),
              postgresql_where=text("preview_agent_id IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20), index=True)  # E.164
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(2))  # US state of the address, narrows the time zone
    postal_code: Mapped[str | None] = mapped_column(String(16))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=LeadStatus.READY.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempts_by_outcome: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    preview_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # why the compliance gate last refused it, and when to look again
    skip_code: Mapped[str | None] = mapped_column(String(32))
    skip_detail: Mapped[str | None] = mapped_column(String(300))
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disposition: Mapped[str | None] = mapped_column(String(32))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # screening answers
    source_line: Mapped[int | None] = mapped_column(Integer)
    list_name: Mapped[str | None] = mapped_column(String(100))  # the list (import) it came from
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DialAttempt(Base):
    """One dial of a lead: the intent (written first), its call, and its line in the abandon ledger."""

    __tablename__ = "dial_attempts"
    __table_args__ = (
        Index("ix_dial_attempts_campaign_answered", "campaign_id", "answered_at"),
        # a lead has at most one attempt in flight
        Index("uq_dial_attempts_lead_in_flight", "lead_id", unique=True,
              sqlite_where=text("status IN ('intent', 'dialed', 'answered')"),
              postgresql_where=text("status IN ('intent', 'dialed', 'answered')")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)  # "<lead id>:<attempt number>"
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1 for the lead's first attempt
    status: Mapped[str] = mapped_column(String(16), default=AttemptStatus.INTENT.value, index=True)
    covered: Mapped[bool] = mapped_column(Boolean, default=True)  # dialed for a free agent, not ahead of one
    call_sid: Mapped[str | None] = mapped_column(String(34), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dialed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(32))  # human | machine_start | ... | unknown
    ring_s: Mapped[float | None] = mapped_column(Float)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    agent_joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seconds_to_agent: Mapped[float | None] = mapped_column(Float)
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)
    message_played: Mapped[bool] = mapped_column(Boolean, default=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(32))  # human, machine, busy, no_answer, failed, canceled
    error: Mapped[str | None] = mapped_column(String(300))


class DncEntry(Base):
    __tablename__ = "dnc_entries"
    __table_args__ = (UniqueConstraint("phone", "source", name="uq_dnc_phone_source"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)  # E.164
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    extract_id: Mapped[int | None] = mapped_column(ForeignKey("registry_extracts.id", ondelete="CASCADE"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RegistryExtract(Base):
    """An imported national do-not-call registry extract; a campaign refuses to dial while the newest is stale."""

    __tablename__ = "registry_extracts"
    id: Mapped[int] = mapped_column(primary_key=True)
    extract_date: Mapped[date] = mapped_column(Date)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rows: Mapped[int] = mapped_column(Integer, default=0)


class HandoffStatus(StrEnum):
    PENDING = "pending"  # waiting to be delivered (or retried)
    SENT = "sent"  # the field-sales endpoint accepted it (2xx)
    FAILED = "failed"  # gave up after the last retry; a supervisor can send it again
    LISTED = "listed"  # no webhook configured for its territory: listed in the API and the CSV export only


class Handoff(Base):
    """A qualified lead passed to the field sales rep of its territory; one per lead, delivered once."""

    __tablename__ = "handoffs"
    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    territory: Mapped[str | None] = mapped_column(String(32))
    rep_name: Mapped[str | None] = mapped_column(String(200))
    rep_email: Mapped[str | None] = mapped_column(String(200))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=HandoffStatus.PENDING.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))  # won | lost, reported by field sales
    amount: Mapped[float | None] = mapped_column(Float)
    outcome_reason: Mapped[str | None] = mapped_column(String(300))
    outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
