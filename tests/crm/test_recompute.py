"""The recompute flow on SQLite and PostgreSQL: tiers (gold is the few who bring 80% of the last 12 months'
revenue), stages, lifetime value and P(alive) from the fitted models, value to date net of call minutes,
every change kept with its reason and shown on the timeline; the same results whatever the chunk size, ties
at the tier caps included; one customer's update after an order; and the job on a real RQ worker."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import delete, select, update

from crm.config import update_settings
from crm.models import CustomerValue, ModelRun, Order, StageChange, TierChange
from crm.recompute import recompute_all, recompute_customer
from crm.value import assign_tiers, rfm_scores
from hub.db import transaction
from hub.models import Call, Customer, CustomerPhone, TimelineEntry
from tests.campaigns.conftest import db, sessions  # noqa: F401  (fixtures)

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def seed_history(sessions, customers: int = 120, seed: int = 4) -> list[int]:  # noqa: F811
    """Customers with gamma-distributed spend and a mix of buying rates; the first 10 buy a lot, recently."""
    rng = random.Random(seed)
    ids = []
    with transaction(sessions) as s:
        for i in range(customers):
            customer = Customer(name=f"Customer {i}", phones=[CustomerPhone(number=f"+1312555{i:04d}")])
            s.add(customer)
            s.flush()
            ids.append(customer.id)
            big = i < 10
            visits = 8 + rng.randint(0, 6) if big else rng.choice([0, 0, 1, 1, 2, 3, 5])
            mean = 400 if big else rng.gammavariate(3, 10)
            for _ in range(visits):
                days_ago = rng.randint(0, 200) if big else rng.randint(0, 700)
                cents = int(100 * max(1.0, rng.gammavariate(4, mean / 4)))
                s.add(Order(customer_id=customer.id, ordered_at=NOW - timedelta(days=days_ago, hours=rng.random()),
                            amount_cents=cents, currency="USD", source="import"))
    return ids


def test_a_full_recompute_sets_tiers_stages_and_figures_and_keeps_every_change(sessions):  # noqa: F811
    ids = seed_history(sessions)
    with transaction(sessions) as s:
        update_settings(s, {"cost_per_minute": 0.5}, NOW)
        s.add(Call(sid="CA" + "1" * 32, direction="inbound", from_number="+13125550000", to_number="+14155550100",
                   customer_id=ids[0], status="completed", duration_s=125))  # 3 started minutes
    result = recompute_all(sessions, NOW)
    assert result.customers == 120 and result.tier_changes > 0 and result.stage_changes > 0
    with transaction(sessions) as s:
        customers = {c.id: c for c in s.scalars(select(Customer))}
        values = {v.customer_id: v for v in s.scalars(select(CustomerValue))}
        assert set(values) == set(ids)
        revenue = sorted(((v.revenue_12m_cents, cid) for cid, v in values.items()), reverse=True)
        gold = [cid for cid, c in customers.items() if c.value_tier == "gold"]
        assert 0 < len(gold) <= 24  # capped at 20% of customers
        assert set(gold) == {cid for _, cid in revenue[:len(gold)]}  # the top spenders, no one else
        top_share = sum(r for r, _ in revenue[:len(gold)]) / sum(r for r, _ in revenue)
        assert top_share >= 0.8 or len(gold) == 24
        assert all(customers[cid].lifecycle_stage == "prospect" for cid, v in values.items() if v.orders == 0)
        assert {customers[cid].lifecycle_stage for cid in ids[:10]} <= {"loyal", "advocate"}
        big = values[ids[0]]
        assert big.p_alive is not None and 0.5 < big.p_alive <= 1 and big.clv_cents > 0
        assert big.talk_minutes == 3 and big.cost_to_serve_cents == 150
        assert big.value_to_date_cents == big.revenue_cents - 150
        run = s.scalar(select(ModelRun))
        assert run.status == "done" and set(run.parameters["population"]["bgnbd"]) >= {"r", "alpha", "a", "b"}
        top = revenue[0][1]
        tier_rows = s.scalars(select(TierChange).where(TierChange.customer_id == top)).all()
        assert [(t.from_tier, t.to_tier) for t in tier_rows] == [("standard", "gold")]
        assert "over the last 12 months (daily recompute)" in tier_rows[0].reason
        stage_rows = s.scalars(select(StageChange).where(StageChange.customer_id == top)).all()
        assert [(t.from_stage, t.to_stage) for t in stage_rows] == [("prospect", "loyal")]
        entries = s.scalars(select(TimelineEntry.summary).where(TimelineEntry.customer_id == top)).all()
        assert any(e.startswith("Tier standard -> gold") for e in entries)
        assert any(e.startswith("Stage prospect -> loyal: loyal:") for e in entries)
        changes = s.query(TierChange).count() + s.query(StageChange).count()
    again = recompute_all(sessions, NOW)
    assert (again.tier_changes, again.stage_changes) == (0, 0)  # the same data: nothing moves
    with transaction(sessions) as s:
        assert s.query(TierChange).count() + s.query(StageChange).count() == changes


def test_silence_turns_buyers_lapsed_then_churned_with_the_reason(sessions):  # noqa: F811
    seed_history(sessions)
    recompute_all(sessions, NOW)
    later = NOW + timedelta(days=800)
    recompute_all(sessions, later)
    with transaction(sessions) as s:
        stages = {c.lifecycle_stage for c in s.scalars(select(Customer)) if c.lifecycle_stage != "prospect"}
        assert stages == {"churned"}
        flagged = s.scalars(select(CustomerValue).where(CustomerValue.orders > 0)).all()
        assert all(v.churn_risk and v.churn_reason.startswith("inactive: no purchase for") for v in flagged)
        reasons = s.scalars(select(StageChange.reason).where(StageChange.to_stage == "churned")).all()
        assert reasons and all("inactive" in r for r in reasons)


def test_an_order_moves_its_customer_at_once_with_the_last_runs_thresholds(sessions):  # noqa: F811
    ids = seed_history(sessions)
    recompute_all(sessions, NOW)
    with transaction(sessions) as s:
        newcomer = s.scalar(select(CustomerValue).where(CustomerValue.orders == 0)).customer_id
        gold_min = s.scalar(select(ModelRun)).parameters["population"]["gold_min_cents"]
        s.add(Order(customer_id=newcomer, ordered_at=NOW, amount_cents=gold_min + 100, currency="USD",
                    source="api", external_id="big-1"))
    with transaction(sessions) as s:
        assert recompute_customer(s, newcomer, NOW, "order big-1") == {"tier": "gold", "stage": "first_time_buyer"}
    with transaction(sessions) as s:
        customer = s.get(Customer, newcomer)
        assert (customer.value_tier, customer.lifecycle_stage) == ("gold", "first_time_buyer")
        change = s.scalar(select(TierChange).where(TierChange.customer_id == newcomer))
        assert change.reason.endswith("(order big-1)")
        value = s.get(CustomerValue, newcomer)
        assert value.orders == 1 and value.p_alive == 1.0 and value.clv_cents > 0  # the run's models apply
        untouched = s.get(CustomerValue, ids[1])
        assert untouched.computed_at == NOW  # others keep the full run's figures
    with sessions() as s:
        assert recompute_customer(s, 999_999, NOW, "nothing") is None


def test_a_later_run_rewrites_only_the_customers_whose_figures_changed(sessions):  # noqa: F811
    seed_history(sessions)
    recompute_all(sessions, NOW)
    later = NOW + timedelta(days=1)
    recompute_all(sessions, later)
    with transaction(sessions) as s:
        values = s.scalars(select(CustomerValue)).all()
        prospects = [v for v in values if v.orders == 0]
        buyers = [v for v in values if v.orders > 0]
        assert prospects and all(v.computed_at == NOW and v.run_id == 1 for v in prospects)  # nothing changed
        assert buyers and all(v.computed_at == later and v.run_id == 2 for v in buyers)  # a day older: new odds


def seed_ties(sessions) -> None:  # noqa: F811
    """40 customers: 5 spent 500 over ten days; 26 spent 50 on the same day, so the gold cap (8 customers) and
    the silver cap (20 in all) both fall inside that tie; 9 never bought. Ids interleave the groups."""
    with transaction(sessions) as s:
        for i in range(40):
            customer = Customer(name=f"Tied {i}", phones=[CustomerPhone(number=f"+1415555{i:04d}")])
            s.add(customer)
            s.flush()
            if i % 8 == 3:
                for day in range(10):
                    s.add(Order(customer_id=customer.id, ordered_at=NOW - timedelta(days=3 + 20 * day),
                                amount_cents=5000, currency="USD", source="import"))
            elif i < 30:
                s.add(Order(customer_id=customer.id, ordered_at=NOW - timedelta(days=30), amount_cents=5000,
                            currency="USD", source="import"))


def _outcome(sessions):  # noqa: F811
    """Everything a full run decides, per customer, and its history (not which run wrote it)."""
    with transaction(sessions) as s:
        figures = {v.customer_id: tuple(getattr(v, c.name) for c in CustomerValue.__table__.columns
                                        if c.name not in ("run_id",))
                   for v in s.scalars(select(CustomerValue))}
        people = {c.id: (c.value_tier, c.lifecycle_stage) for c in s.scalars(select(Customer))}
        history = sorted((t.customer_id, t.from_tier, t.to_tier, t.reason) for t in s.scalars(select(TierChange)))
        history += sorted((t.customer_id, t.from_stage, t.to_stage, t.reason) for t in s.scalars(select(StageChange)))
        timeline = sorted((e.customer_id, e.kind, e.summary) for e in s.scalars(select(TimelineEntry)))
        population = s.scalar(select(ModelRun.parameters).order_by(ModelRun.id.desc()).limit(1))["population"]
    return figures, people, history, timeline, population


def _forget_results(sessions):  # noqa: F811
    with transaction(sessions) as s:
        for model in (TierChange, StageChange, TimelineEntry, CustomerValue, ModelRun):
            s.execute(delete(model))
        s.execute(update(Customer).values(value_tier="standard", lifecycle_stage="prospect"))


def test_the_chunk_size_changes_nothing_and_ranks_everyone_as_one_whole_base_would(sessions, monkeypatch):  # noqa: F811
    monkeypatch.setattr("crm.scoring.FIT_SAMPLE", 40)  # of about 75 buyers: the sample is drawn across chunks
    seed_ties(sessions)
    seed_history(sessions, customers=60)
    outcomes = []
    for chunk in (2, 3, 10_000):
        _forget_results(sessions)
        first = recompute_all(sessions, NOW, chunk=chunk)
        later = recompute_all(sessions, NOW + timedelta(days=30), chunk=chunk)
        outcomes.append((first.as_dict() | {"run_id": None}, later.as_dict() | {"run_id": None}, _outcome(sessions)))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0][0]["customers"] == 100 and outcomes[0][0]["buyers"] > 40 and outcomes[0][0]["tier_changes"] > 0
    assert outcomes[0][2][4]["bgnbd"] and outcomes[0][2][4]["gamma_gamma"]  # fitted on the sample: P(alive), CLV

    _forget_results(sessions)
    recompute_all(sessions, NOW, chunk=3)
    _assert_ranked_as_one_base(sessions)


def test_a_tie_at_the_gold_and_silver_caps_is_split_by_customer_id_across_chunks(sessions):  # noqa: F811
    seed_ties(sessions)
    recompute_all(sessions, NOW, chunk=3)
    tiers = _assert_ranked_as_one_base(sessions)
    tied = [tier for i, tier in enumerate(tiers) if i % 8 != 3 and i < 30]
    assert tied == ["gold"] * 3 + ["silver"] * 12 + ["standard"] * 11
    assert [tiers[i] for i in range(3, 40, 8)] == ["gold"] * 5


def _assert_ranked_as_one_base(sessions) -> list[str]:  # noqa: F811
    """Check that the stored tiers and RFM scores are those of ranking the whole base at once in memory
    (crm.value); return the tiers in customer id order."""
    with transaction(sessions) as s:
        rows = s.execute(select(Customer.id, Customer.value_tier, CustomerValue.revenue_12m_cents,
                                CustomerValue.purchase_days, CustomerValue.revenue_cents,
                                CustomerValue.last_purchase_at, CustomerValue.recency_score,
                                CustomerValue.frequency_score, CustomerValue.monetary_score)
                         .join(CustomerValue, CustomerValue.customer_id == Customer.id).order_by(Customer.id)).all()
    ids = np.array([r[0] for r in rows])
    assert [r[1] for r in rows] == assign_tiers(np.array([r[2] for r in rows]) / 100.0, ids).tolist()
    today = NOW.date()
    recency = [float((today - r[5].date()).days) if r[3] else np.nan for r in rows]
    expected = rfm_scores(recency, [r[3] for r in rows], [r[4] / 100.0 for r in rows])
    assert [tuple(r[6:]) for r in rows] == list(zip(*(e.tolist() for e in expected)))
    return [r[1] for r in rows]
