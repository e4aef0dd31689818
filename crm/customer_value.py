"""One customer's value as the API shows it: tier, stage, the last recompute's figures (amounts in the CRM's
currency), and the history of their tier and stage changes, newest first."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.config import current_settings
from crm.models import CustomerValue, StageChange, TierChange
from hub.customers import money
from hub.models import Customer

HISTORY_LIMIT = 100  # changes of each kind shown, newest first


def value_dict(customer: Customer, value: CustomerValue | None) -> dict[str, Any]:
    """A customer's tier, stage and computed figures; a customer never scored shows zeros and nulls."""
    v = value
    return {
        "customer_id": customer.id, "tier": customer.value_tier, "stage": customer.lifecycle_stage,
        "orders": v.orders if v else 0, "purchase_days": v.purchase_days if v else 0,
        "first_purchase_at": v.first_purchase_at.isoformat() if v and v.first_purchase_at else None,
        "last_purchase_at": v.last_purchase_at.isoformat() if v and v.last_purchase_at else None,
        "revenue": money(v.revenue_cents) if v else 0.0, "revenue_12m": money(v.revenue_12m_cents) if v else 0.0,
        "average_order": money(v.average_order_cents) if v else 0.0,
        "rfm": {"recency": v.recency_score, "frequency": v.frequency_score, "monetary": v.monetary_score}
        if v else None,
        "expected_purchases": v.expected_purchases if v else None, "p_alive": v.p_alive if v else None,
        "lifetime_value": money(v.clv_cents) if v else None, "churn_risk": v.churn_risk if v else False,
        "churn_reason": v.churn_reason if v else None, "talk_minutes": v.talk_minutes if v else 0,
        "cost_to_serve": money(v.cost_to_serve_cents) if v else 0.0,
        "value_to_date": money(v.value_to_date_cents) if v else 0.0, "advocate": v.advocate if v else False,
        "computed_at": v.computed_at.isoformat() if v and v.computed_at else None,
    }


def value_with_history(session: Session, customer: Customer) -> dict[str, Any]:
    """The customer's value_dict with the CRM's currency and their tier and stage history."""
    body = value_dict(customer, session.get(CustomerValue, customer.id))
    body["currency"] = current_settings(session).currency
    body["tier_history"] = [
        {"at": t.changed_at.isoformat(), "from": t.from_tier, "to": t.to_tier, "reason": t.reason}
        for t in _newest(session, TierChange, customer.id)]
    body["stage_history"] = [
        {"at": s.changed_at.isoformat(), "from": s.from_stage, "to": s.to_stage, "reason": s.reason}
        for s in _newest(session, StageChange, customer.id)]
    return body


def _newest(session: Session, change: type[TierChange] | type[StageChange], customer_id: int):
    return session.scalars(select(change).where(change.customer_id == customer_id)
                           .order_by(change.changed_at.desc(), change.id.desc()).limit(HISTORY_LIMIT))
