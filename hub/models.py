"""The hub's shared data: customers and their numbers and timeline, agents, queues, calls and call events."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hub.columns import UTCDateTime, utcnow


class Base(DeclarativeBase):
    pass


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Tier(StrEnum):
    GOLD = "gold"
    SILVER = "silver"
    STANDARD = "standard"


class Stage(StrEnum):
    PROSPECT = "prospect"
    FIRST_TIME_BUYER = "first_time_buyer"
    REPEAT_BUYER = "repeat_buyer"
    LOYAL = "loyal"
    ADVOCATE = "advocate"
    LAPSED = "lapsed"
    CHURNED = "churned"


class Leg(StrEnum):
    CUSTOMER = "customer"  # the caller's (or the called customer's) leg
    AGENT = "agent"  # the leg the hub placed to an agent's softphone
    CALLBACK = "callback"  # the leg the hub placed to call a customer back
    SUPERVISOR = "supervisor"  # a supervisor's leg added to a call's conference (listen, whisper, barge)


DISPOSITIONS = ("resolved", "callback", "sale", "complaint", "not_interested", "wrong_number")
CAMPAIGN_DISPOSITIONS = ("qualified", "not_interested", "callback", "wrong_number", "do_not_call")  # outbound screening
BREAK_REASONS = ("lunch", "meeting", "training", "personal")


class RoutingLock(Base):
    """One row that routing flows lock on PostgreSQL so decisions never interleave."""

    __tablename__ = "routing_lock"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # bumped by database triggers whenever anything routing loads changes (migration 0009, hub.routing_cache)
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (
        # A call is held (offered, connecting or talking) by at most one agent, and an agent holds one call.
        Index("uq_agents_call_sid", "call_sid", unique=True, sqlite_where=text("call_sid IS NOT NULL"),
              postgresql_where=text("call_sid IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16), default=Role.AGENT.value)
    team: Mapped[str | None] = mapped_column(String(64))
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    presence: Mapped[str] = mapped_column(String(16), default="offline")
    break_reason: Mapped[str | None] = mapped_column(String(32))
    work: Mapped[str] = mapped_column(String(16), default="idle")
    state_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    idle_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    call_sid: Mapped[str | None] = mapped_column(String(34))
    pending_presence: Mapped[str | None] = mapped_column(String(16))
    pending_reason: Mapped[str | None] = mapped_column(String(32))
    missed_offers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    skills: Mapped[list[AgentSkill]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def skill_levels(self) -> dict[str, int]:
        return {s.skill: s.level for s in self.skills}


class AgentSkill(Base):
    __tablename__ = "agent_skills"
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, default=1)


class Queue(Base):
    __tablename__ = "queues"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    phone_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    offer_timeout_s: Mapped[int] = mapped_column(Integer, default=15)
    wrap_up_s: Mapped[int] = mapped_column(Integer, default=60)
    strategy: Mapped[str] = mapped_column(String(16), default="longest_idle", server_default="longest_idle")
    preferred_window_s: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    # [{"after_s": 30, "skills": {"support": 1}}, ...]: wider skills as the wait grows
    escalation: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")
    max_wait_s: Mapped[int | None] = mapped_column(Integer)
    overflow_action: Mapped[str | None] = mapped_column(String(16))  # queue | voicemail
    overflow_queue: Mapped[str | None] = mapped_column(String(64))
    # {"timezone": "America/New_York", "days": {"0": ["08:00", "18:00"], ...}}; null: always open
    hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after_hours_action: Mapped[str] = mapped_column(String(16), default="voicemail", server_default="voicemail")
    after_hours_queue: Mapped[str | None] = mapped_column(String(64))
    service_level_s: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    last_agent_id: Mapped[int | None] = mapped_column(Integer)  # round robin position
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    skills: Mapped[list[QueueSkill]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def skill_levels(self) -> dict[str, int]:
        return {s.skill: s.min_level for s in self.skills}


class QueueSkill(Base):
    __tablename__ = "queue_skills"
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(64), primary_key=True)
    min_level: Mapped[int] = mapped_column(Integer, default=1)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("external_ref", name="uq_customers_external_ref"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    # the customer's id in the seller's own systems (orders imported from them name it); unique when set
    external_ref: Mapped[str | None] = mapped_column(String(64))
    value_tier: Mapped[str] = mapped_column(String(16), default=Tier.STANDARD.value)
    lifecycle_stage: Mapped[str] = mapped_column(String(32), default=Stage.PROSPECT.value)
    owner_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    phones: Mapped[list[CustomerPhone]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    owner: Mapped[Agent | None] = relationship(lazy="joined")


class CustomerPhone(Base):
    __tablename__ = "customer_phones"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # E.164
    label: Mapped[str | None] = mapped_column(String(32))


class Call(Base):
    """One telephony leg: a customer's call, or the leg the hub placed to an agent."""

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    leg: Mapped[str] = mapped_column(String(16), default=Leg.CUSTOMER.value)
    parent_sid: Mapped[str | None] = mapped_column(String(34), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    from_number: Mapped[str] = mapped_column(String(40))
    to_number: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    # an outbound campaign's call (the campaign's wrap-up applies); the table lives in campaigns.models
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    last_sequence: Mapped[int | None] = mapped_column(Integer)
    routing_state: Mapped[str | None] = mapped_column(String(16), index=True)
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tried_agent_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    priority_s: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    preferred_agent_ids: Mapped[list[int]] = mapped_column(JSON, default=list, server_default="[]")
    routing_outcome: Mapped[str | None] = mapped_column(String(32))  # e.g. voicemail: why it left the line
    callback: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    customer_zones: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[int | None] = mapped_column(Integer)
    wrap_up_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disposition: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    # in-call controls (hub.call_controls): the conference the customer's leg talks in, whether that leg is
    # held, whether an agent's leg is muted, a supervisor leg's mode, and a transfer's kind and sender
    conference_sid: Mapped[str | None] = mapped_column(String(34))
    on_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    muted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    monitor_mode: Mapped[str | None] = mapped_column(String(16))  # listen | whisper | barge
    transfer_kind: Mapped[str | None] = mapped_column(String(8))  # warm | cold: this row routes a transfer
    transferred_by: Mapped[int | None] = mapped_column(Integer)  # the agent who transferred it

    customer: Mapped[Customer | None] = relationship(lazy="joined")
    queue: Mapped[Queue | None] = relationship(lazy="joined")
    agent: Mapped[Agent | None] = relationship(lazy="joined")


class CallEvent(Base):
    """A telephony callback as received; the unique keys make a repeated callback a no-op."""

    __tablename__ = "call_events"
    __table_args__ = (
        UniqueConstraint("source_sid", "kind", "sequence_number", name="uq_call_events_sequence"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    source_sid: Mapped[str] = mapped_column(String(34), index=True)  # CallSid, or ConferenceSid
    kind: Mapped[str] = mapped_column(String(16))  # status | conference
    sequence_number: Mapped[int | None] = mapped_column(Integer)
    idempotency_token: Mapped[str | None] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(32))  # the CallStatus or StatusCallbackEvent
    call_sid: Mapped[str | None] = mapped_column(String(34), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TimelineEntry(Base):
    """One touch point on a customer's timeline."""

    __tablename__ = "timeline_entries"
    __table_args__ = (Index("ix_timeline_customer_time", "customer_id", "occurred_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # call | note | disposition
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    summary: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    call: Mapped[Call | None] = relationship(lazy="joined")
    agent: Mapped[Agent | None] = relationship(lazy="joined")


class RoutingTrace(Base):
    """Why routing did what it did with a call: candidates, who was skipped and why, the deciding rule."""

    __tablename__ = "routing_traces"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(300))
    chosen_agent_id: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class Complaint(Base):
    """A customer's complaint, opened by an agent at wrap-up and open until someone closes it with a resolution."""

    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_customer_open", "customer_id", "closed_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    summary: Mapped[str] = mapped_column(String(300))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    resolution: Mapped[str | None] = mapped_column(Text)

    opener: Mapped[Agent | None] = relationship(foreign_keys=[opened_by], lazy="joined")


class ScheduledCallback(Base):
    """A callback an agent booked at an inbound call's wrap-up: at `due_at` it enters routing as a callback,
    offered to its owner first (none: anyone in the queue)."""

    __tablename__ = "scheduled_callbacks"
    __table_args__ = (Index("ix_scheduled_callbacks_customer_status", "customer_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))  # booked on
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    zone: Mapped[str] = mapped_column(String(64))  # the zone the time was picked in
    owner_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    booked_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled | routed
    routed_sid: Mapped[str | None] = mapped_column(String(34))  # the routed call it became

    owner: Mapped[Agent | None] = relationship(foreign_keys=[owner_agent_id], lazy="joined")
    queue: Mapped[Queue | None] = relationship(lazy="joined")
