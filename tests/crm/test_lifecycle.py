"""Lifecycle stages and the churn flag: each rule, the precedence and the reasons."""
from __future__ import annotations

import numpy as np
import pytest

from crm import lifecycle as lc

AS_OF = 1000  # day number; purchases are days before it


def stage(purchases, first, last, recent=None, advocate=False, p_alive=np.nan, rules=lc.DEFAULT_LIFECYCLE_RULES):
    stages, reasons = lc.stage_for([purchases], [first], [last], AS_OF,
                                   recent_purchases=[purchases if recent is None else recent],
                                   advocate=[advocate], p_alive=[p_alive], rules=rules)
    return str(stages[0]), str(reasons[0])


def test_every_stage_is_a_hub_stage_except_churned():
    from hub.models import Stage

    assert set(lc.STAGES) - {s.value for s in Stage} <= {lc.CHURNED}


def test_no_purchase_is_a_prospect_even_when_marked_or_dated_nat():
    stages, reasons = lc.stage_for([0], np.array(["NaT"], dtype="datetime64[D]"),
                                   np.array(["NaT"], dtype="datetime64[D]"), np.datetime64("2025-01-01"),
                                   recent_purchases=[0], advocate=[True])
    assert (stages[0], reasons[0]) == (lc.PROSPECT, "no_purchase: no purchase yet")


def test_one_recent_purchase_is_a_first_time_buyer():
    assert stage(1, 950, 950) == (lc.FIRST_TIME_BUYER, "first_purchase: one purchase so far")


def test_two_purchases_make_a_repeat_buyer():
    assert stage(2, 900, 960, recent=2) == (lc.REPEAT_BUYER, "repeat: 2 purchases")


def test_four_purchases_in_the_window_make_a_loyal_customer_but_four_in_all_do_not():
    assert stage(4, 700, 980, recent=4) == (lc.LOYAL, "loyal: 4 purchases in the last 365 days")
    assert stage(4, 300, 980, recent=3)[0] == lc.REPEAT_BUYER
    custom = lc.LifecycleRules(loyal_purchases=3, loyal_window_days=180)
    assert stage(4, 300, 980, recent=3, rules=custom) == (lc.LOYAL, "loyal: 3 purchases in the last 180 days")


def test_a_marked_advocate_outranks_loyal():
    assert stage(6, 700, 990, recent=6, advocate=True) == (lc.ADVOCATE, "advocate: marked as an advocate")


def test_lapsed_when_silent_for_more_than_twice_the_usual_interval():
    # 4 purchases from day 640 to day 820: every 60 days; 180 days since the last is past 2 x 60
    assert stage(4, 640, 820, recent=3) == (lc.LAPSED, "overdue: no purchase for 180 days; usually every 60")
    assert stage(4, 640, 880, recent=4)[0] == lc.LOYAL  # 120 days is not past 2 x 80


def test_a_one_time_buyer_lapses_after_the_floor():
    assert stage(1, 909, 909) == (lc.LAPSED, "overdue: one purchase, 91 days ago (lapsed after 90)")
    assert stage(1, 910, 910)[0] == lc.FIRST_TIME_BUYER


def test_the_floor_keeps_a_frequent_buyer_from_lapsing_after_a_short_pause():
    assert stage(10, 820, 955, recent=10)[0] == lc.LOYAL  # every 15 days, 45 days silent: under the 90-day floor


def test_lapsed_outranks_advocate_and_loyal():
    assert stage(5, 100, 500, recent=0, advocate=True)[0] == lc.LAPSED


def test_churned_by_model_or_by_two_years_of_silence_outranks_lapsed_and_advocate():
    assert stage(3, 100, 900, recent=1, p_alive=0.05, advocate=True) == (
        lc.CHURNED, "p_alive: still active with probability 0.05 (under 0.10)")
    assert stage(3, 100, 200, recent=0, p_alive=0.9) == (
        lc.CHURNED, "inactive: no purchase for 800 days (churned after 730)")
    assert stage(3, 100, 900, recent=1, p_alive=0.1)[0] != lc.CHURNED  # the threshold is "under"
    assert stage(3, 100, 200, recent=0, rules=lc.LifecycleRules(churn_after_days=900))[0] == lc.LAPSED


def test_churn_flag_without_a_model_only_counts_silence_and_never_flags_prospects():
    flag, reason = lc.churn_flag(None, [10.0, 731.0, np.nan])
    assert flag.tolist() == [False, True, False]
    assert reason.tolist() == ["", "inactive: no purchase for 731 days (churned after 730)", ""]
    flag, _ = lc.churn_flag([0.01, np.nan], [10.0, 10.0])
    assert flag.tolist() == [True, False]


def test_many_customers_at_once_keep_their_order_and_accept_datetimes():
    day = np.datetime64("2025-06-30")
    first = np.array(["NaT", "2025-06-01", "2024-01-01", "2025-01-01"], dtype="datetime64[D]")
    last = np.array(["NaT", "2025-06-01", "2024-03-01", "2025-06-20"], dtype="datetime64[D]")
    stages, _ = lc.stage_for([0, 1, 2, 5], first, last, day, recent_purchases=[0, 1, 0, 5],
                             p_alive=[np.nan, 1.0, 0.3, 0.95])
    assert stages.tolist() == [lc.PROSPECT, lc.FIRST_TIME_BUYER, lc.LAPSED, lc.LOYAL]


@pytest.mark.parametrize("kwargs, message", [
    (dict(purchases=[1], recent=[2]), "recent_purchases"),
    (dict(purchases=[1.5], recent=[1]), "whole numbers"),
    (dict(purchases=[2], recent=[1], first=[500], last=[400]), "first_purchase <= last_purchase"),
    (dict(purchases=[2], recent=[1], first=[500], last=[1200]), "as_of"),
    (dict(purchases=[2], recent=[1], first=[np.nan], last=[400]), "first and last"),
])
def test_inconsistent_inputs_are_refused_with_the_argument_named(kwargs, message):
    with pytest.raises(lc.StageInputError, match=message):
        lc.stage_for(kwargs["purchases"], kwargs.get("first", [0]), kwargs.get("last", [0]), AS_OF,
                     recent_purchases=kwargs["recent"])
