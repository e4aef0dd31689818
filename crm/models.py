"""Analytical CRM data: orders, each customer's computed value, tier and stage history, model runs, segments.

Money is integer cents (minor units) everywhere in these tables, so sums in SQL are exact on both databases.
A customer's tier and stage stay on `customers` (routing and the dialer read them there); the figures a
recompute derives (scores, lifetime value, P(alive), churn flag, value to date) live one row per customer in
`crm_customer_values`, which a full recompute rewrites in bulk without touching the customers rows that did
not change tier or stage.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, SmallInteger, String,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from hub.columns import UTCDateTime, utcnow
from hub.models import Base


class OrderSource(StrEnum):
    IMPORT = "import"  # a CSV of purchase history
    API = "api"  # POST /api/v1/customers/<id>/orders
    HANDOFF = "handoff"  # field sales reported a handoff won, with its amount


class Order(Base):
    """One purchase. (source, external_id) is unique, so a repeated import or API call adds nothing."""

    __tablename__ = "crm_orders"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_crm_orders_source_external_id"),
        Index("ix_crm_orders_customer_time", "customer_id", "ordered_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    product: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(100))  # the seller's order id; null: none given
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerValue(Base):
    """What the last recompute found about one customer (absent: never computed, i.e. a prospect)."""

    __tablename__ = "crm_customer_values"
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    purchase_days: Mapped[int] = mapped_column(Integer, default=0)  # distinct UTC days with an order
    first_purchase_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_purchase_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revenue_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_12m_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    average_order_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    recency_score: Mapped[int] = mapped_column(SmallInteger, default=0)  # 1-5, 0: no purchase
    frequency_score: Mapped[int] = mapped_column(SmallInteger, default=0)
    monetary_score: Mapped[int] = mapped_column(SmallInteger, default=0)
    expected_purchases: Mapped[float | None] = mapped_column(Float)  # over the CLV horizon; null: no model yet
    p_alive: Mapped[float | None] = mapped_column(Float)
    clv_cents: Mapped[int | None] = mapped_column(BigInteger)  # expected future value over the horizon
    churn_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    churn_reason: Mapped[str | None] = mapped_column(String(200))
    talk_minutes: Mapped[int] = mapped_column(Integer, default=0)  # started minutes of the customer's calls
    cost_to_serve_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    value_to_date_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # revenue minus cost to serve
    advocate: Mapped[bool] = mapped_column(Boolean, default=False)  # marked by a person (a referral); kept
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    run_id: Mapped[int | None] = mapped_column(Integer)  # the full recompute whose model was used


class TierChange(Base):
    """A customer's value tier changed: when, from what, to what, and why."""

    __tablename__ = "crm_tier_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_tier: Mapped[str | None] = mapped_column(String(16))
    to_tier: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(300))


class StageChange(Base):
    """A customer's lifecycle stage changed: when, from what, to what, and the event that caused it."""

    __tablename__ = "crm_stage_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_stage: Mapped[str | None] = mapped_column(String(32))
    to_stage: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300))


class ModelRun(Base):
    """One full recompute: the population's fitted model and thresholds, which per-customer updates reuse."""

    __tablename__ = "crm_model_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    customers: Mapped[int] = mapped_column(Integer, default=0)
    buyers: Mapped[int] = mapped_column(Integer, default=0)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    # {"bgnbd": {...}, "gamma_gamma": {...}, "tiers": {...}, "rfm": {...}, "model_note": "..."}
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tier_changes: Mapped[int] = mapped_column(Integer, default=0)
    stage_changes: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))


class CrmSettings(Base):
    """The CRM's one settings row: currency, what serving a customer costs, and the tier and stage rules."""

    __tablename__ = "crm_settings"
    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    cost_per_minute: Mapped[float] = mapped_column(Float, default=0.0)  # per started minute of a customer's call
    cost_per_order: Mapped[float] = mapped_column(Float, default=0.0)  # fulfilment, per order
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # overrides of TierRules/StageRules/model
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Segment(Base):
    """A saved, named filter over customers (criteria validated by crm.segments)."""

    __tablename__ = "crm_segments"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(String(300))
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
