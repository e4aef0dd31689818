"""BG/NBD and Gamma-Gamma: the published CDNOW fit, closed forms against independent derivations."""
from __future__ import annotations

import csv
import io
import pathlib
import zipfile
from collections import defaultdict
from datetime import date

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import hyp2f1

from crm import clv

WHEEL = pathlib.Path(__file__).resolve().parents[2] / ".cache" / "test-data" / "Lifetimes-0.11.3-py3-none-any.whl"
CALIBRATION_END = date(1997, 9, 30)  # end of week 39 (Fader, Hardie and Lee 2005)
CDNOW = clv.BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)  # the paper's estimates


def cdnow_wheel() -> zipfile.ZipFile:
    if not WHEEL.exists():
        pytest.skip(f"the CDNOW sample ships in the Lifetimes wheel, expected at {WHEEL}: run `./run test` once "
                    "to download it (test data only)")
    return zipfile.ZipFile(WHEEL)


def cdnow_calibration():
    """Per customer (in id order): first day, last day, purchase days, and the repeat days' spend."""
    with cdnow_wheel() as wheel:
        text = wheel.read("lifetimes/datasets/CDNOW_sample.txt").decode()
    spend_by_day: dict[int, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for line in text.splitlines():
        if not line.strip():
            continue
        _, customer, day, _cds, dollars = line.split()
        when = date(int(day[:4]), int(day[4:6]), int(day[6:]))
        if when <= CALIBRATION_END:
            spend_by_day[int(customer)][when] += float(dollars)
    customers = sorted(spend_by_day)
    days = [sorted(spend_by_day[c]) for c in customers]
    first = np.array([d[0].toordinal() for d in days])
    last = np.array([d[-1].toordinal() for d in days])
    count = np.array([len(d) for d in days])
    repeat_spend = np.array([sum(spend_by_day[c][d] for d in ds[1:]) for c, ds in zip(customers, days)])
    return customers, first, last, count, repeat_spend


def test_cdnow_summary_is_2357_customers_measured_in_weeks_to_the_end_of_week_39():
    customers, first, last, count, _ = cdnow_calibration()
    summary = clv.summarise(first, last, count, CALIBRATION_END.toordinal())
    assert len(customers) == 2357
    assert int((summary.frequency > 0).sum()) == 946  # customers with a repeat purchase in the calibration
    # Cross-check against the summary table shipped next to the raw data (x, t_x, T rounded to 2 decimals).
    with cdnow_wheel() as wheel:
        table = list(csv.DictReader(io.StringIO(
            wheel.read("lifetimes/datasets/cdnow_customers_summary_with_transactions.csv").decode())))
    assert [int(row["ID"]) for row in table] == customers
    np.testing.assert_array_equal(summary.frequency, [float(row["x"]) for row in table])
    np.testing.assert_allclose(summary.recency, [float(row["t_x"]) for row in table], atol=0.006)
    np.testing.assert_allclose(summary.T, [float(row["T"]) for row in table], atol=0.006)


def test_cdnow_fit_reproduces_the_published_bgnbd_parameters_within_2_percent():
    _, first, last, count, _ = cdnow_calibration()
    summary = clv.summarise(first, last, count, CALIBRATION_END.toordinal())

    model = clv.fit_bgnbd(summary.frequency, summary.recency, summary.T)

    for name in ("r", "alpha", "a", "b"):
        published = getattr(CDNOW, name)
        assert abs(getattr(model, name) / published - 1) < 0.02, (name, getattr(model, name), published)
    assert model.log_likelihood == pytest.approx(-9582.4, abs=0.05)  # the paper's LL at its estimates
    at_published = clv.bgnbd_log_likelihood(CDNOW, summary.frequency, summary.recency, summary.T).sum()
    assert at_published == pytest.approx(-9582.4, abs=0.1) and at_published <= model.log_likelihood


def test_cdnow_fit_with_compressed_rows_is_the_same_fit():
    _, first, last, count, _ = cdnow_calibration()
    summary = clv.summarise(first, last, count, CALIBRATION_END.toordinal())
    (x, t_x, age), weights = clv.compress_rows(summary.frequency, summary.recency, summary.T)
    assert len(x) < len(summary.frequency) and weights.sum() == len(summary.frequency)

    full = clv.fit_bgnbd(summary.frequency, summary.recency, summary.T)
    compressed = clv.fit_bgnbd(x, t_x, age, weights=weights)

    for name in ("r", "alpha", "a", "b", "log_likelihood"):
        assert getattr(compressed, name) == pytest.approx(getattr(full, name), rel=1e-5)


def test_cdnow_gamma_gamma_reproduces_the_published_spend_parameters():
    # Fader, Hardie and Lee (2005), "RFM and CLV": p = 6.25, q = 3.74, gamma = 15.44 from the average value of
    # the calibration period's repeat transactions of the 946 customers who made one (mean $35.08).
    _, first, last, count, repeat_spend = cdnow_calibration()
    x = (count - 1).astype(float)
    buyers = x > 0
    average = repeat_spend[buyers] / x[buyers]
    assert average.mean() == pytest.approx(35.08, abs=0.005)

    model = clv.fit_gamma_gamma(x[buyers], average)

    assert (round(model.p, 2), round(model.q, 2), round(model.v, 2)) == (6.25, 3.74, 15.44)


def expected_purchases_by_quadrature(model: clv.BgNbd, t: float, x: float, t_x: float, age: float) -> float:
    """E[Y(t)] = P(alive) E[(1 - exp(-lambda p t)) / p] with the posteriors of an alive customer.

    Alive at T, lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + x); the lambda integral is closed
    ((alpha + T)/(alpha + T + p t))^(r + x), the p integral is done numerically: no hypergeometric function.
    """
    shape, rate = model.r + x, model.alpha + age

    def integrand(p: float) -> float:
        return (1 - (rate / (rate + p * t)) ** shape) / p * stats.beta.pdf(p, model.a, model.b + x)

    alive = float(clv.probability_alive(model, x, t_x, age))
    value, _ = integrate.quad(integrand, 0, 1, epsabs=1e-13, epsrel=1e-11, limit=200)
    return alive * value


@pytest.mark.parametrize("model", [CDNOW, clv.BgNbd(r=0.5, alpha=2.0, a=1.7, b=3.0)], ids=["a<1", "a>1"])
@pytest.mark.parametrize("x, t_x, age, t", [(0, 0, 38.86, 39), (1, 5.0, 38.86, 10), (2, 30.43, 38.86, 39),
                                             (7, 29.43, 38.86, 52), (20, 10.0, 60.0, 5), (3, 1.0, 1.5, 100)])
def test_expected_purchases_matches_an_integral_over_the_posterior(model, x, t_x, age, t):
    closed = float(clv.expected_purchases(model, t, x, t_x, age))
    assert closed == pytest.approx(expected_purchases_by_quadrature(model, t, x, t_x, age), rel=1e-7)


def simulate_bgnbd(model: clv.BgNbd, ages: np.ndarray, horizon: float, rng: np.random.Generator):
    """Draw customers from the model: repeat purchases in (0, T], whether alive at T, purchases in (T, T + t]."""
    n = len(ages)
    rate = rng.gamma(model.r, 1 / model.alpha, n)
    dropout = rng.beta(model.a, model.b, n)
    clock = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    x = np.zeros(n)
    t_x = np.zeros(n)
    future = np.zeros(n)
    active = np.arange(n)
    while len(active):
        clock[active] += rng.exponential(1 / rate[active])
        bought = clock[active] <= ages[active] + horizon
        active = active[bought]
        calibration = clock[active] <= ages[active]
        x[active[calibration]] += 1
        t_x[active[calibration]] = clock[active[calibration]]
        future[active[~calibration]] += 1
        dies = rng.random(len(active)) < dropout[active]
        alive[active[dies & calibration]] = False  # death after a holdout purchase is not "dead at T"
        active = active[~dies]
    return x, t_x, alive, future


def test_expected_purchases_and_p_alive_agree_with_a_simulation_of_the_model():
    rng = np.random.default_rng(20050601)
    model = clv.BgNbd(r=0.5, alpha=2.0, a=0.8, b=2.5)
    ages = rng.uniform(10, 40, 200_000)
    horizon = 20.0
    x, t_x, alive, future = simulate_bgnbd(model, ages, horizon, rng)

    predicted = clv.expected_purchases(model, horizon, x, t_x, ages)
    p_alive = clv.probability_alive(model, x, t_x, ages)

    # Given (x, t_x, T) the prediction is E[future]; averaged over any set chosen by x and T alone it must
    # match the simulated mean (iterated expectation). Tolerance: 4 standard errors.
    for group in (np.ones_like(x, dtype=bool), x == 0, x == 1, (x >= 2) & (x <= 4), x >= 5, ages < 20):
        error = future[group].std() / np.sqrt(group.sum())
        assert abs(predicted[group].mean() - future[group].mean()) < 4 * error
        share_alive = alive[group].mean()
        error = np.sqrt(share_alive * (1 - share_alive) / group.sum())
        assert abs(p_alive[group].mean() - share_alive) < 4 * error + 1e-12
    assert np.all(p_alive[x == 0] == 1.0) and np.all(alive[x == 0])


def test_fit_recovers_the_parameters_of_simulated_customers():
    rng = np.random.default_rng(7)
    truth = clv.BgNbd(r=0.5, alpha=2.0, a=0.8, b=2.5)
    ages = rng.uniform(10, 40, 100_000)
    x, t_x, _, _ = simulate_bgnbd(truth, ages, 0.0, rng)

    model = clv.fit_bgnbd(x, t_x, ages)

    for name in ("r", "alpha", "a", "b"):
        assert getattr(model, name) == pytest.approx(getattr(truth, name), rel=0.1), name


def test_limits_of_the_closed_forms():
    assert float(clv.expected_purchases(CDNOW, 0.0, 3, 20.0, 38.0)) == 0.0
    horizons = np.array([1.0, 5.0, 20.0, 100.0, 500.0])
    growing = clv.expected_purchases(CDNOW, horizons, 3, 20.0, 38.0)
    assert np.all(np.diff(growing) > 0)
    # a customer who bought often and just now is more likely alive than one who stopped long ago
    recent, stale = clv.probability_alive(CDNOW, [5, 5], [37.0, 5.0], [38.0, 38.0])
    assert 0 < stale < recent < 1
    # buying at the very end of the observation: alive with probability 1 / (1 + a/(b + x - 1))
    assert float(clv.probability_alive(CDNOW, 4, 38.0, 38.0)) == pytest.approx(1 / (1 + CDNOW.a / (CDNOW.b + 3)))


def test_gamma_gamma_expected_spend_matches_a_simulation_and_shrinks_to_the_mean():
    rng = np.random.default_rng(11)
    truth = clv.GammaGamma(p=6.0, q=4.0, v=15.0)
    n = 100_000
    x = rng.integers(1, 8, n).astype(float)
    nu = rng.gamma(truth.q, 1 / truth.v, n)
    average = rng.gamma(truth.p * x, 1 / (nu * x))  # the mean of x Gamma(p, nu) values

    predicted = clv.expected_average_spend(truth, x, average)
    true_mean = truth.p / nu
    for group in (x == 1, x == 4, x == 7):
        spread = (true_mean[group] - predicted[group]).std() / np.sqrt(group.sum())
        assert abs(predicted[group].mean() - true_mean[group].mean()) < 4 * spread

    fitted = clv.fit_gamma_gamma(x, average)
    for name in ("p", "q", "v"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), rel=0.1), name
    population_mean = truth.p * truth.v / (truth.q - 1)
    assert float(clv.expected_average_spend(truth, 0, np.nan)) == pytest.approx(population_mean)
    one, many = clv.expected_average_spend(truth, [1, 50], [100.0, 100.0])
    assert population_mean < one < many < 100.0  # more transactions: trust the customer's own average more


def test_lifetime_value_is_discounted_expected_purchases_times_expected_spend():
    spend_model = clv.GammaGamma(p=6.25, q=3.74, v=15.44)
    args = (CDNOW, spend_model, [2.0, 0.0], [30.43, 0.0], [38.86, 38.86], [22.35, np.nan])

    undiscounted = clv.lifetime_value(*args, horizon_periods=12, discount_rate_per_period=0.0, period_length=52 / 12)
    two = clv.lifetime_value(*args, horizon_periods=2, discount_rate_per_period=0.01, period_length=4.0)

    spend = clv.expected_average_spend(spend_model, [2.0, 0.0], [22.35, np.nan])
    year = clv.expected_purchases(CDNOW, 52.0, [2.0, 0.0], [30.43, 0.0], [38.86, 38.86])
    np.testing.assert_allclose(undiscounted, spend * year, rtol=1e-12)
    first = clv.expected_purchases(CDNOW, 4.0, [2.0, 0.0], [30.43, 0.0], [38.86, 38.86])
    second = clv.expected_purchases(CDNOW, 8.0, [2.0, 0.0], [30.43, 0.0], [38.86, 38.86]) - first
    np.testing.assert_allclose(two, spend * (first / 1.01 + second / 1.01 ** 2), rtol=1e-12)


def test_summarise_counts_repeat_days_from_the_first_purchase_and_accepts_datetimes():
    first = np.array(["2024-01-01", "2024-03-01"], dtype="datetime64[D]")
    last = np.array(["2024-01-15T10:30", "2024-03-01T00:00"], dtype="datetime64[m]")
    summary = clv.summarise(first, last, [3, 1], np.datetime64("2024-03-15"), unit_days=1)
    np.testing.assert_array_equal(summary.frequency, [2, 0])
    np.testing.assert_array_equal(summary.recency, [14, 0])
    np.testing.assert_array_equal(summary.T, [74, 14])


@pytest.mark.parametrize("first, last, count, message", [
    ([0], [5], [0], "at least one purchase"),
    ([5], [0], [2], "before the first"),
    ([0], [20], [2], "after as_of"),
    ([3], [3], [2], "same first and last"),
])
def test_summarise_refuses_inconsistent_aggregates(first, last, count, message):
    with pytest.raises(clv.ModelError, match=message):
        clv.summarise(first, last, count, 10)


def test_fit_refuses_data_without_a_repeat_purchase_or_with_recency_beyond_age():
    with pytest.raises(clv.ModelError, match="repeat purchase"):
        clv.fit_bgnbd([0, 0], [0, 0], [10, 20])
    with pytest.raises(clv.ModelError, match="recency <= T"):
        clv.fit_bgnbd([1], [12], [10])
    with pytest.raises(clv.ModelError, match="frequency > 0"):
        clv.fit_gamma_gamma([0, 2], [10.0, 12.0])


def test_spend_without_spread_between_customers_fits_the_limiting_model_and_says_so(caplog):
    # Every customer's transactions have the same mean (35): q and v are not identified and grow without
    # limit; the fit stops on the flat ridge (or at its bound) and predicts the common mean for everyone.
    rng = np.random.default_rng(3)
    x = rng.integers(1, 8, 5_000).astype(float)
    average = rng.gamma(6.0 * x, 35.0 / (6.0 * x))

    model = clv.fit_gamma_gamma(x, average)

    assert model.q > 1000 and model.v / model.q == pytest.approx(35.0 / 6.0, rel=0.05)  # nu = q / v = 6 / 35
    assert "not identify" in caplog.text
    np.testing.assert_allclose(clv.expected_average_spend(model, x, average), 35.0, rtol=0.02)


# 15 buyers (40 customers of a small shop), days since the first purchase: the BG/NBD likelihood is a ridge
# in (a, b). The first start stops on it, stationary; a later start ends a hair lower but less still. The fit
# used to keep only the lowest point, find it not stationary and refuse, so a small base got no lifetime value.
RIDGE_X = [7, 8, 5, 5, 5, 2, 2, 0, 1, 2, 2, 2, 2, 1, 0]
RIDGE_TX_DAYS = [140, 132, 98, 84, 106, 421, 372, 0, 456, 182, 355, 205, 202, 242, 0]
RIDGE_T_DAYS = [150, 148, 119, 144, 133, 515, 374, 406, 562, 545, 464, 459, 568, 507, 275]


def test_a_stationary_fit_on_a_ridge_is_kept_when_a_later_start_ends_lower_but_not_stationary():
    (x, t_x, age), weights = clv.compress_rows(RIDGE_X, np.array(RIDGE_TX_DAYS) / 7, np.array(RIDGE_T_DAYS) / 7)
    model = clv.fit_bgnbd(x, t_x, age, weights=weights)
    assert model.log_likelihood == pytest.approx(-150.7278, abs=1e-3)
    assert 0 < clv.probability_alive(model, [2], [26.0], [77.86])[0] < 1


def test_expected_purchases_stay_finite_as_a_fit_runs_out_along_its_ridge():
    # A base of three identical buyers: the fit ends with r, alpha, a, b in the thousands to hundreds of
    # thousands (where exactly depends on the CPU). scipy's 2F1 gives up there; the value must not, and must
    # join up with what scipy gives for the same model a tenth the size.
    x, t_x, age = np.array([2.0, 5.0, 1.0]), np.array([120 / 7, 40.0, 3.0]), np.array([400 / 7, 52.0, 30.0])

    def model(scale):
        return clv.BgNbd(r=372_283.4 * scale, alpha=3_269_017.4 * scale, a=11_024.7, b=11_272.2, log_likelihood=0)

    far, near = model(1.0), model(0.1)
    assert not np.any(np.isfinite(hyp2f1(far.r + x, far.b + x, far.a + far.b + x - 1, 52 / (far.alpha + age + 52))))
    expected = clv.expected_purchases(far, 52.0, x, t_x, age)
    np.testing.assert_allclose(expected, clv.expected_purchases(near, 52.0, x, t_x, age), rtol=1e-3)
    assert np.all(expected > 0)


def test_the_series_behind_the_fallback_matches_scipy_where_scipy_works():
    rng = np.random.default_rng(11)
    p, q, c = (rng.uniform(0.5, 60.0, 200) for _ in range(3))
    z, log_decay = rng.uniform(0.0, 0.9, 200), rng.uniform(-5.0, 0.0, 200)
    # summed in logs, term by term, against scipy's own evaluation (both rounding, more so near z = 0.9)
    np.testing.assert_allclose(clv._decayed_series(p, q, c, z, log_decay), np.exp(log_decay) * hyp2f1(p, q, c, z),
                               rtol=1e-8)


def test_a_flat_direction_of_the_likelihood_is_found_wherever_the_search_stopped_on_it():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 8, 5_000).astype(float)
    same_mean = rng.gamma(6.0 * x, 35.0 / (6.0 * x))  # no spread between customers: q and v not identified
    spread = rng.gamma(6.0 * x, 1.0 / rng.gamma(4.0, 1 / 15.0, 5_000)) / x  # p 6, q 4, v 15: identified

    def objective(frequency, value):
        weights = np.ones_like(frequency)
        return lambda theta: clv._mean_negative(*clv._gg_ll_and_gradient(theta, frequency, value), weights,
                                                weights.sum())

    on_ridge = np.log([6.019, 7_741.5, 44_909.8])  # where one CPU's search stops: converged, not at the bound
    assert clv._flat_parameters(objective(x, same_mean), on_ridge) == [1, 2]
    fitted = clv.fit_gamma_gamma(x, spread)
    assert clv._flat_parameters(objective(x, spread), np.log([fitted.p, fitted.q, fitted.v])) == []
