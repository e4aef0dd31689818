"""RFM scores, value tiers and the Pareto curve."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.value import GOLD, SILVER, STANDARD, TierRules, ScoringError, assign_tiers, pareto_curve, rfm_scores

TIER_RANK = {GOLD: 2, SILVER: 1, STANDARD: 0}


def test_ten_distinct_buyers_get_two_customers_per_quintile_with_5_best():
    days = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    count = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1])
    spend = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    recency, frequency, monetary = rfm_scores(days, count, spend)
    assert recency.tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]  # fewest days since the last purchase is best
    assert frequency.tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert monetary.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_equal_values_share_a_score_and_customers_without_a_purchase_score_0():
    recency, frequency, monetary = rfm_scores([30, 30, 30, 30, 400, np.nan], [1, 1, 1, 1, 6, 0], [5, 5, 5, 5, 5, 0])
    # four of five buyers tied at 1 purchase: mid-rank (0 + 2) / 5 = 0.4 -> 2; the one with 6: 0.9 -> 5
    assert frequency.tolist() == [2, 2, 2, 2, 5, 0]
    assert recency.tolist() == [3, 3, 3, 3, 1, 0]  # 30 days: (1 worse + 4 / 2) / 5 = 0.6 -> 3
    assert monetary.tolist() == [3, 3, 3, 3, 3, 0]  # every buyer spent the same


def test_rfm_refuses_missing_values_for_buyers():
    with pytest.raises(ScoringError, match="recency_days"):
        rfm_scores([np.nan], [2], [10.0])
    with pytest.raises(ScoringError, match="frequency"):
        rfm_scores([1.0], [-1], [10.0])


def test_gold_is_the_fewest_customers_bringing_80_percent_and_silver_the_next_up_to_95():
    revenue = [10, 400, 50, 5, 300, 100, 60, 40, 20, 15]  # total 1000
    tiers = assign_tiers(revenue)
    # sorted: 400, 300 (70%) -> not enough; +100 = 80% -> gold is 3 customers but the cap is 20% of 10 = 2.
    # silver: 100, 60, 50, 40 would reach 95%, but gold and silver together are capped at 50% of 10 = 5
    assert tiers.tolist() == [STANDARD, GOLD, SILVER, STANDARD, GOLD, SILVER, SILVER, STANDARD, STANDARD, STANDARD]


def test_without_the_cap_gold_stops_exactly_at_80_percent():
    revenue = [10, 400, 50, 5, 300, 100, 60, 40, 20, 15]
    tiers = assign_tiers(revenue, rules=TierRules(gold_cap=0.5, silver_cap=1.0))
    # gold 400 + 300 + 100 = 800 exactly; silver 60 + 50 + 40 = 950 exactly
    assert sorted(np.flatnonzero(tiers == GOLD).tolist()) == [1, 4, 5]
    assert sorted(np.flatnonzero(tiers == SILVER).tolist()) == [2, 6, 7]


def test_cents_summing_to_the_threshold_in_floating_point_reach_it():
    # 0.7 + 0.1 is 0.7999999999999999 in binary floating point: still 80% of 1.0; + 0.1 is 0.8999999999999999
    tiers = assign_tiers([0.7, 0.1, 0.1, 0.1, 0, 0, 0, 0, 0, 0], rules=TierRules(gold_cap=0.5, silver_share=0.9))
    assert tiers.tolist()[:4] == [GOLD, GOLD, SILVER, STANDARD]


def test_all_zero_revenue_makes_everyone_standard():
    assert assign_tiers([0.0, 0.0, 0.0]).tolist() == [STANDARD] * 3
    assert assign_tiers([]).tolist() == []


def test_zero_revenue_and_refunds_are_never_gold_or_silver():
    tiers = assign_tiers([100.0, -30.0, 0.0, 0.0], rules=TierRules(gold_share=1.0, silver_share=1.0,
                                                                   gold_cap=1.0, silver_cap=1.0))
    assert tiers.tolist() == [GOLD, STANDARD, STANDARD, STANDARD]


def test_ties_are_broken_by_the_lower_customer_id():
    revenue = [50.0] * 10
    ids = [19, 12, 17, 11, 15, 13, 18, 10, 16, 14]
    tiers = assign_tiers(revenue, ids)
    assert sorted(i for i, t in zip(ids, tiers) if t == GOLD) == [10, 11]
    assert sorted(i for i, t in zip(ids, tiers) if t == SILVER) == [12, 13, 14]  # 50% of customers in all


def test_tier_rules_refuse_inconsistent_thresholds_and_tiers_refuse_missing_revenue():
    with pytest.raises(ScoringError):
        TierRules(gold_share=0.9, silver_share=0.8)
    with pytest.raises(ScoringError):
        TierRules(gold_cap=0.6, silver_cap=0.5)
    with pytest.raises(ScoringError, match="finite"):
        assign_tiers([1.0, np.nan])
    with pytest.raises(ScoringError, match="customer_ids"):
        assign_tiers([1.0, 2.0], [1])


revenues = st.lists(st.one_of(st.just(0.0), st.integers(0, 10_000).map(lambda cents: cents / 100)),
                    min_size=0, max_size=60)
rules = st.builds(lambda g, s, gc, sc: TierRules(gold_share=g, silver_share=max(g, s), gold_cap=gc,
                                                 silver_cap=max(gc, sc)),
                  st.floats(0.05, 1.0), st.floats(0.05, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))


@settings(max_examples=300, deadline=None)
@given(revenues, rules, st.randoms(use_true_random=False))
def test_gold_is_the_smallest_set_reaching_its_share_within_its_cap_and_tiers_follow_revenue(revenue, rule, rnd):
    ids = list(range(len(revenue)))
    rnd.shuffle(ids)
    tiers = assign_tiers(revenue, ids, rules=rule)
    n, values = len(revenue), np.array(revenue, dtype=float)
    gold = tiers == GOLD
    total = values.sum()
    assert gold.sum() <= int(rule.gold_cap * n)
    assert ((tiers == GOLD) | (tiers == SILVER)).sum() <= int(rule.silver_cap * n)
    assert np.all(tiers[values == 0] == STANDARD)
    if total > 0:
        reached = values[gold].sum() >= rule.gold_share * total * (1 - 1e-9)
        capped = gold.sum() == int(rule.gold_cap * n)
        assert reached or capped
        if gold.any():  # smallest: without its smallest member gold would fall short
            assert values[gold].sum() - values[gold].min() < rule.gold_share * total * (1 - 1e-9)
    # monotone: more revenue never means a lower tier; equal revenue: the lower id never gets the lower tier
    rank = np.array([TIER_RANK[t] for t in tiers])
    for i in range(n):
        for j in range(n):
            if values[i] > values[j] or (values[i] == values[j] and ids[i] < ids[j]):
                assert rank[i] >= rank[j]


def test_pareto_curve_is_the_cumulative_revenue_share_highest_first():
    shares, revenue = pareto_curve([10, 400, 50, 5, 300, 100, 60, 40, 20, 15], points=11)
    np.testing.assert_allclose(shares, np.linspace(0, 1, 11))
    np.testing.assert_allclose(revenue, [0, 0.4, 0.7, 0.8, 0.86, 0.91, 0.95, 0.97, 0.985, 0.995, 1.0])
    half = pareto_curve([3.0, 1.0], points=5)[1]
    np.testing.assert_allclose(half, [0, 0.375, 0.75, 0.875, 1.0])  # interpolated between whole customers
    assert pareto_curve([0.0, 0.0], points=3)[1].tolist() == [0, 0, 0]
