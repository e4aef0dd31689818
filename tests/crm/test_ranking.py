"""The database's ranking of the whole base (crm.ranking), on SQLite and PostgreSQL: scoring customers a few
at a time against its cuts and edges gives every customer exactly the tier and RFM scores that ranking the
whole base at once in memory gives (crm.value.assign_tiers, crm.value.rfm_scores), ties and edge cases
included."""
from __future__ import annotations

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from crm.aggregates import STAGES, TIERS, WORK_TABLE, Aggregates, drop_staged, stage_aggregates
from crm.ranking import rank_base
from crm.rules import rules_from_settings
from crm.scoring import fit_population, score
from crm.value import TierRules, assign_tiers, rfm_scores
from tests.campaigns.conftest import sessions  # noqa: F401  (fixture)
from tests.crm.test_recompute import NOW

TODAY = 20_000


def _base(rng: np.random.Generator, n: int) -> Aggregates:
    """n customers, many of them tied: few distinct revenues and days, some without any purchase."""
    ids = np.sort(rng.choice(np.arange(1, 10 * n + 10), size=n, replace=False))
    days = rng.choice([0, 1, 2, 3, 5, 8], size=n) * rng.integers(0, 2, size=n)  # purchase days, 0: none
    last_day = np.where(days > 0, TODAY - rng.choice([0, 0, 3, 40, 400], size=n), 0)
    revenue = np.where(days > 0, rng.choice([100, 250, 250, 999, 5000], size=n) * days, 0)
    revenue_12m = np.where(rng.random(n) < 0.7, revenue, 0)
    zeros = np.zeros(n, dtype=np.int64)
    return Aggregates(customer_id=ids, tier=np.full(n, 2, dtype=np.int8), stage=zeros.astype(np.int8),
                      advocate=zeros.astype(bool), orders=days, purchase_days=days, recent_days=zeros,
                      first_day=np.where(days > 0, last_day - 30 * (days > 1), 0), last_day=last_day,
                      first_at=zeros, last_at=zeros, revenue=revenue, first_day_revenue=revenue // np.maximum(days, 1),
                      revenue_12m=revenue_12m, talk_minutes=zeros)


def _stage(session: Session, agg: Aggregates) -> None:
    """Put these customers in the staged table (as crm.aggregates.stage_aggregates would from orders)."""
    stage_aggregates(session, NOW, 365)  # no customers yet: an empty table of the right shape
    names = list(Aggregates.__dataclass_fields__)
    rows = [dict(zip(names, values)) for values in zip(*(getattr(agg, n).tolist() for n in names))]
    if rows:
        session.execute(text(f"INSERT INTO {WORK_TABLE} ({', '.join(names)}) VALUES "
                             f"({', '.join(':' + n for n in names)})"), rows)


def _chunks(agg: Aggregates, rng: np.random.Generator):
    start = 0
    while start < len(agg):
        size = int(rng.integers(1, 4))
        yield Aggregates(*(getattr(agg, n)[start:start + size] for n in Aggregates.__dataclass_fields__))
        start += size


def test_scoring_a_few_customers_at_a_time_against_the_ranking_equals_ranking_everyone_at_once(sessions):  # noqa: F811
    rng = np.random.default_rng(7)
    rules = rules_from_settings({})
    cases = []
    for _ in range(25):
        gold_share, gold_cap = float(rng.uniform(0.05, 1)), float(rng.uniform(0, 0.6))
        cases.append((int(rng.integers(0, 60)), TierRules(gold_share=gold_share, gold_cap=gold_cap,
                                                          silver_share=float(rng.uniform(gold_share, 1)),
                                                          silver_cap=float(rng.uniform(gold_cap, 1)))))
    cases += [(1, TierRules()), (0, TierRules()),
              (40, TierRules(gold_share=1.0, silver_share=1.0, gold_cap=1.0, silver_cap=1.0))]
    engine = sessions.kw["bind"]
    for n, tier_rules in cases:
        agg = _base(rng, n)
        rules = rules.__class__(tiers=tier_rules, lifecycle=rules.lifecycle, model=rules.model)
        with engine.connect() as connection, Session(bind=connection) as session:
            _stage(session, agg)
            ranking = rank_base(session, TODAY, tier_rules)
            drop_staged(session)
            session.commit()
        assert (ranking.customers, ranking.buyers) == (n, int(np.count_nonzero(agg.purchase_days)))
        population = fit_population(Aggregates(*(getattr(agg, f)[:0] for f in Aggregates.__dataclass_fields__)),
                                    ranking, TODAY)
        parts = [score(part, population, rules, TODAY, ranking=ranking, cost_per_minute=0, cost_per_order=0)
                 for part in _chunks(agg, rng)]
        tiers = [TIERS[t] for p in parts for t in p.tier.tolist()]
        assert tiers == assign_tiers(agg.revenue_12m / 100.0, agg.customer_id, rules=tier_rules).tolist(), n
        bought = agg.purchase_days > 0
        expected = rfm_scores(np.where(bought, np.maximum(TODAY - agg.last_day, 0), np.nan),
                              agg.purchase_days, agg.revenue / 100.0)
        for letter, wanted in zip(("recency", "frequency", "monetary"), expected):
            got = [s for p in parts for s in getattr(p, letter).tolist()]
            assert got == wanted.tolist(), (n, letter)
        assert all(STAGES[s] for p in parts for s in p.stage.tolist())


def test_every_buyer_alike_scores_3_and_a_tie_at_the_gold_cut_goes_to_the_lower_ids(sessions):  # noqa: F811
    n = 10
    ids = np.array([19, 12, 17, 11, 15, 13, 18, 10, 16, 14])
    order = np.argsort(ids)
    days = np.ones(n, dtype=np.int64)
    zeros = np.zeros(n, dtype=np.int64)
    agg = Aggregates(customer_id=ids[order], tier=np.full(n, 2, dtype=np.int8), stage=zeros.astype(np.int8),
                     advocate=zeros.astype(bool), orders=days, purchase_days=days, recent_days=zeros,
                     first_day=np.full(n, TODAY - 3), last_day=np.full(n, TODAY - 3), first_at=zeros, last_at=zeros,
                     revenue=np.full(n, 5000), first_day_revenue=np.full(n, 5000), revenue_12m=np.full(n, 5000),
                     talk_minutes=zeros)
    with sessions.kw["bind"].connect() as connection, Session(bind=connection) as session:
        _stage(session, agg)
        ranking = rank_base(session, TODAY, TierRules())
        session.rollback()
    assert (ranking.gold.revenue_12m, ranking.gold.customer_id) == (5000, 11)  # 2 of 10: ids 10 and 11
    assert (ranking.silver.revenue_12m, ranking.silver.customer_id) == (5000, 14)  # 50% in all: up to id 14
    assert ranking.rfm_edges == {"r": [-3.0, -3.0, None, None], "f": [1.0, 1.0, None, None],
                                 "m": [50.0, 50.0, None, None]}  # everyone 3
