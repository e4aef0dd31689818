"""Customer lifetime value: the BG/NBD model of purchase counts with the Gamma-Gamma model of spend.

BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way"): while alive, a customer buys
as a Poisson process with rate lambda ~ Gamma(r, alpha); after each purchase they drop out with probability
p ~ Beta(a, b). A customer is summarised by (x, t_x, T): x repeat purchases, the last at t_x, observed for T,
all measured from their first purchase. The likelihood (paper eq. 6) is, in logs (Hardie's note on
implementing it in Excel),

    ln L = A1 + A2 + ln(exp(A3) + [x > 0] exp(A4))
    A1 = lnG(r + x) - lnG(r) + r ln(alpha)
    A2 = lnG(a + b) + lnG(b + x) - lnG(b) - lnG(a + b + x)
    A3 = -(r + x) ln(alpha + T)
    A4 = ln(a) - ln(b + x - 1) - (r + x) ln(alpha + t_x)

and is maximised over the log of the four parameters (so they stay positive) with scipy's L-BFGS-B and the
analytic gradient (digamma terms; the log-sum's two terms weighted by their shares), bounded to
e^-15..e^15, from up to three starts. Identical (x, t_x, T) rows enter once with a weight, so a
million customers summarised in days cost a few hundred thousand distinct rows (see `compress_rows`).

Predictions use the paper's closed forms: eq. 10 for the expected number of purchases in the next t given
(x, t_x, T), with scipy's hyp2f1, and P(alive | x, t_x, T) = 1 / (1 + [x > 0] a/(b + x - 1)
((alpha + T)/(alpha + t_x))^(r + x)). A customer with no repeat purchase is alive by the model's assumption
(drop-out only happens right after a purchase), so P(alive) is 1 for them, as the paper's formula gives.

Gamma-Gamma (Fader, Hardie and Lee 2005, "RFM and CLV: using iso-value curves for customer base analysis";
Hardie's note "The Gamma-Gamma model of monetary value"): each transaction's value is Gamma(p, nu) with
nu ~ Gamma(q, gamma) per customer (gamma is `v` here), so the average m_x of x transactions has the likelihood

    ln f = lnG(p x + q) - lnG(p x) - lnG(q) + q ln(gamma) + (p x - 1) ln(m_x) + p x ln(x) - (p x + q) ln(gamma + x m_x)

fitted on customers with x > 0 only, and the expected average spend is (gamma + x m_x) p / (p x + q - 1).
The model assumes spend is independent of the purchase process; it needs q > 1 for a finite mean.

Conventions used throughout (those of the papers and of the Lifetimes package): frequency x counts repeat
purchase *days*: several orders on one day are one purchase; recency t_x and age T run from the first
purchase day, in one time unit (weeks by default, `summarise` converts days). Everything is vectorised over
numpy arrays; nothing here reads the clock: `as_of` is a parameter.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1

FloatArray = NDArray[np.float64]
log = logging.getLogger(__name__)
_LOG_BOUND = 15.0  # parameters are searched in e^-15 .. e^15


class ModelError(ValueError):
    """The data cannot be fitted or the model's parameters do not allow the requested prediction."""


@dataclass(frozen=True)
class BgNbd:
    """Fitted BG/NBD parameters: lambda ~ Gamma(r, alpha), drop-out p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")  # total, at the optimum (nan when built by hand)


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma parameters: transaction value ~ Gamma(p, nu), nu ~ Gamma(q, v)."""

    p: float
    q: float
    v: float
    log_likelihood: float = float("nan")


@dataclass(frozen=True)
class Summary:
    """Per-customer (frequency, recency, T) in the model's time unit."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray


def summarise(first_purchase: ArrayLike, last_purchase: ArrayLike, purchase_days: ArrayLike,
              as_of: ArrayLike, unit_days: float = 7.0) -> Summary:
    """Turn per-customer purchase aggregates into the model's (frequency, recency, T).

    Args:
        first_purchase: day of each customer's first purchase, as numpy datetime64 values (any resolution;
            truncated to days) or as integer day numbers.
        last_purchase: day of each customer's last purchase, same type.
        purchase_days: number of distinct days on which each customer bought (at least 1).
        as_of: the end of the observation period, a day of the same type (scalar or per customer).
        unit_days: length of the model's time unit in days (7: weeks, as in the CDNOW papers).

    Returns:
        Summary with frequency = purchase_days - 1, recency = (last - first) / unit_days and
        T = (as_of - first) / unit_days.

    Raises:
        ModelError: a customer has no purchase, a last purchase before the first, or one after `as_of`.
    """
    first = _days(first_purchase)
    last = _days(last_purchase)
    end = _days(as_of)
    count = np.asarray(purchase_days, dtype=np.float64)
    if first.shape != last.shape or first.shape != count.shape:
        raise ModelError("first_purchase, last_purchase and purchase_days must have the same length")
    if np.any(count < 1):
        raise ModelError("every customer summarised must have at least one purchase day")
    if np.any(last < first):
        raise ModelError("a last purchase is before the first")
    if np.any(last > end):
        raise ModelError("a purchase is after as_of")
    if np.any((count > 1) & (last == first)):
        raise ModelError("a customer with several purchase days has the same first and last day")
    return Summary(frequency=count - 1.0, recency=(last - first) / unit_days, T=(end - first) / unit_days)


def _days(values: ArrayLike) -> FloatArray:
    """Day numbers (float) from datetime64 values or plain numbers."""
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.datetime64):
        return array.astype("datetime64[D]").astype(np.int64).astype(np.float64)
    return array.astype(np.float64)


def compress_rows(*columns: ArrayLike) -> tuple[list[FloatArray], FloatArray]:
    """Collapse identical rows of the given columns into unique rows and their counts (weights).

    Returns:
        (unique columns, counts): fitting the unique rows with `weights=counts` gives the same likelihood as
        fitting every row.
    """
    stacked = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i].copy() for i in range(unique.shape[1])], counts.astype(np.float64)


def _bgnbd_checked(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64)
    t_x = np.asarray(recency, dtype=np.float64)
    age = np.asarray(T, dtype=np.float64)
    x, t_x, age = np.broadcast_arrays(x, t_x, age)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(age))):
        raise ModelError("frequency, recency and T must be finite")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > age):
        raise ModelError("need frequency >= 0 and 0 <= recency <= T")
    if np.any((x == 0) & (t_x != 0)):
        raise ModelError("a customer with no repeat purchase must have recency 0")
    return x, t_x, age


def bgnbd_log_likelihood(model: BgNbd, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """Return each customer's BG/NBD log-likelihood (paper eq. 6, in the log-sum form)."""
    x, t_x, age = _bgnbd_checked(frequency, recency, T)
    return _bgnbd_ll(np.log([model.r, model.alpha, model.a, model.b]), x, t_x, age)


def _bgnbd_ll(log_params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray) -> FloatArray:
    return _bgnbd_ll_and_gradient(log_params, x, t_x, age, gradient=False)[0]


def _bgnbd_ll_and_gradient(log_params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray, *,
                           gradient: bool = True) -> tuple[FloatArray, FloatArray | None]:
    """Per-row log-likelihood and, if asked, its derivatives with respect to log r, log alpha, log a, log b."""
    r, alpha, a, b = np.exp(log_params)
    repeat = x > 0
    # b + x - 1 > 0 whenever x >= 1; for x = 0 the A4 term is absent, so feed a harmless 1 to the log.
    b_x_1 = np.where(repeat, b + x - 1, 1.0)
    log_alpha_age, log_alpha_tx = np.log(alpha + age), np.log(alpha + t_x)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * log_alpha_age
    a4 = np.where(repeat, np.log(a) - np.log(b_x_1) - (r + x) * log_alpha_tx, -np.inf)
    mixed = np.logaddexp(a3, a4)
    ll = a1 + a2 + mixed
    if not gradient:
        return ll, None
    w3, w4 = np.exp(a3 - mixed), np.exp(a4 - mixed)  # shares of the two terms (w4 = 0 when x = 0)
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * log_alpha_age - w4 * log_alpha_tx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + age) + w4 / (alpha + t_x))
    d_a = psi_ab - psi_abx + w4 / a
    d_b = psi_ab + digamma(b + x) - digamma(b) - psi_abx - w4 / b_x_1
    return ll, np.stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])  # chain rule to log-parameters


def fit_bgnbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None) -> BgNbd:
    """Fit the BG/NBD model by maximum likelihood.

    Args:
        frequency: repeat purchases x per customer (row).
        recency: time of the last purchase since the first, t_x.
        T: time from the first purchase to the end of observation.
        weights: optional number of customers each row stands for (see `compress_rows`).

    Returns:
        The maximum-likelihood parameters.

    Raises:
        ModelError: invalid data, or no customer with a repeat purchase (the drop-out process is then not
            identified), or the optimiser did not converge.
    """
    x, t_x, age = _bgnbd_checked(frequency, recency, T)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != x.shape or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ModelError("weights must be finite, non-negative and one per row")
    total = w.sum()
    if total <= 0 or not np.any((x > 0) & (w > 0)):
        raise ModelError("need at least one customer with a repeat purchase to fit BG/NBD")

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ll, grad = _bgnbd_ll_and_gradient(theta, x, t_x, age)
        return _mean_negative(ll, grad, w, total)

    return _with_total_ll(_maximise(objective, 4), total, BgNbd)


def _mean_negative(ll: FloatArray, grad: FloatArray | None, w: FloatArray, total: float) -> tuple[float, FloatArray]:
    """Weighted mean negative log-likelihood and gradient; +inf (and a zero gradient) off the finite region."""
    value = -float(np.dot(w, ll)) / total
    slope = -(grad @ w) / total
    if not (np.isfinite(value) and np.all(np.isfinite(slope))):
        return np.inf, np.zeros_like(slope)
    return value, slope


def _maximise(objective: Callable[[FloatArray], tuple[float, FloatArray]], n_params: int) -> tuple[float, ...]:
    """Minimise a mean negative log-likelihood over log-parameters; return the parameters and the minimum.

    The mean (not the sum) keeps the tolerances meaningful for 100 or 10,000,000 customers alike. Starts at
    parameters 1, then e^-1 and e only if the previous start did not converge. The search is bounded to
    e^-15..e^15: where the data cannot identify a parameter (e.g. every customer's spend has the same mean,
    so Gamma-Gamma's q and v grow without limit) the fit stops at the bound, which is the limiting model and
    predicts sensibly, instead of running on for minutes; a warning names the parameter.

    Raises:
        ModelError: no start reached a finite, stationary point.
    """
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * n_params
    best = last = None
    for start in (0.0, -1.0, 1.0):
        result = minimize(objective, np.full(n_params, start), jac=True, method="L-BFGS-B", bounds=bounds,
                          options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000})
        if not np.isfinite(result.fun):
            continue
        last = result
        # L-BFGS-B's line search gives up at the limit of floating-point precision, e.g. on a flat ridge
        # where two parameters are not identified: accept the point if it is stationary for practical needs.
        # Only stationary points compete: on such a ridge a later start can end a hair lower but less still,
        # and must not throw away a good point found before it.
        stationary = result.success or _projected_gradient(result, bounds) < 1e-5
        if stationary and (best is None or result.fun < best.fun):
            best = result
        if result.success:
            break
    if last is None:
        raise ModelError("the likelihood is not finite anywhere the fit looked")
    if best is None:
        raise ModelError(f"the likelihood fit did not converge for this data ({last.message})")
    if not best.success:
        log.warning("likelihood fit stopped on a flat likelihood (gradient %.1e): the data may not identify "
                    "every parameter", _projected_gradient(best, bounds))
    at_bound = np.flatnonzero(np.abs(best.x) >= _LOG_BOUND - 1e-6)
    if len(at_bound):
        log.warning("likelihood fit: parameter(s) %s at the search bound; the data does not identify them",
                    at_bound.tolist())
    elif best.success:
        # the search may also stop, converged, on the way out along a flat ridge (where it stops depends on the
        # CPU's floating point, e.g. AVX-512 or not): the curvature says so whatever the point reached
        flat = _flat_parameters(objective, best.x)
        if flat:
            log.warning("likelihood fit: the likelihood is flat along parameter(s) %s; the data does not "
                        "identify them", flat)
    return (*(float(v) for v in np.exp(best.x)), float(best.fun))


_FLAT = 1e-6  # a direction whose curvature is below this share of the steepest one is flat


def _flat_parameters(objective: Callable[[FloatArray], tuple[float, FloatArray]], theta: FloatArray) -> list[int]:
    """The parameters along the flattest direction of the mean negative log-likelihood at `theta`, if that
    direction is flat (its curvature under `_FLAT` times the largest); [] when every direction is curved.

    The Hessian comes from central differences of the analytic gradient in log-parameters, where it does not
    depend on the scale of the data (days or weeks, cents or dollars) nor, for a mean, on the number of
    customers. A well-identified fit has a curvature ratio around 1e-3; Gamma-Gamma with no spread of spend
    between customers, stopped at q ~ 8,000 on its ridge, 1e-8.
    """
    n, h = len(theta), 1e-4
    hessian = np.empty((n, n))
    for i in range(n):
        step = np.zeros(n)
        step[i] = h
        hessian[:, i] = (objective(theta + step)[1] - objective(theta - step)[1]) / (2 * h)
    if not np.all(np.isfinite(hessian)):
        return []
    curvatures, directions = np.linalg.eigh((hessian + hessian.T) / 2)
    if curvatures[-1] <= 0 or curvatures[0] > _FLAT * curvatures[-1]:
        return []
    return np.flatnonzero(np.abs(directions[:, 0]) > 0.3).tolist()


def _projected_gradient(result, bounds: list[tuple[float, float]]) -> float:
    """Largest gradient component that could still move the point inside the bounds."""
    lower = np.array([b[0] for b in bounds])
    upper = np.array([b[1] for b in bounds])
    free = ~(((result.x <= lower) & (result.jac > 0)) | ((result.x >= upper) & (result.jac < 0)))
    return float(np.max(np.abs(result.jac[free]), initial=0.0))


def _with_total_ll(params: tuple[float, ...], total: float, cls):
    *values, mean_nll = params
    return cls(*values, log_likelihood=float(-mean_nll * total))


def probability_alive(model: BgNbd, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """Return P(alive at T | x, t_x, T): 1 for customers without a repeat purchase, as the model gives."""
    x, t_x, age = _bgnbd_checked(frequency, recency, T)
    return 1.0 / (1.0 + _death_odds(model, x, t_x, age))


def _death_odds(model: BgNbd, x: FloatArray, t_x: FloatArray, age: FloatArray) -> FloatArray:
    """[x > 0] a/(b + x - 1) ((alpha + T)/(alpha + t_x))^(r + x), computed in logs (it can be huge)."""
    repeat = x > 0
    safe = np.where(repeat, model.b + x - 1, 1.0)
    log_odds = (np.log(model.a) - np.log(safe)
                + (model.r + x) * (np.log(model.alpha + age) - np.log(model.alpha + t_x)))
    with np.errstate(over="ignore"):
        return np.where(repeat, np.exp(log_odds), 0.0)


def expected_purchases(model: BgNbd, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike,
                       T: ArrayLike) -> FloatArray:
    """Return the expected number of purchases in (T, T + t] given (x, t_x, T) (paper eq. 10).

    E[Y(t) | x, t_x, T] = (a + b + x - 1)/(a - 1)
        * [1 - ((alpha + T)/(alpha + T + t))^(r + x) 2F1(r + x, b + x; a + b + x - 1; t/(alpha + T + t))]
        / [1 + [x > 0] a/(b + x - 1) ((alpha + T)/(alpha + t_x))^(r + x)]

    The formula holds for a < 1 too (both factors of the first product change sign); a = 1 exactly is a
    removable singularity that is refused.
    """
    if model.a == 1.0:
        raise ModelError("expected_purchases needs a != 1 (a removable singularity of eq. 10)")
    x, t_x, age = _bgnbd_checked(frequency, recency, T)
    horizon = np.asarray(t, dtype=np.float64)
    if np.any(horizon < 0) or not np.all(np.isfinite(horizon)):
        raise ModelError("the horizon t must be finite and non-negative")
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    z = horizon / (alpha + age + horizon)
    log_decay = (r + x) * (np.log(alpha + age) - np.log(alpha + age + horizon))
    with np.errstate(over="ignore", invalid="ignore"):
        decayed = np.exp(log_decay) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    lost = ~np.isfinite(decayed)
    if np.any(lost):  # scipy's 2F1 gives up for parameters in the hundreds of thousands (a fit at its limit)
        shape = np.broadcast(decayed, r + x, b + x, z, log_decay).shape
        decayed = np.array(np.broadcast_to(decayed, shape))
        lost = np.broadcast_to(lost, shape)
        decayed[lost] = _decayed_series(*(np.broadcast_to(v, shape)[lost] for v in
                                          (r + x, b + x, a + b + x - 1, z, log_decay)))
    bracket = 1.0 - decayed
    return (a + b + x - 1) / (a - 1) * bracket / (1.0 + _death_odds(model, x, t_x, age))


def _decayed_series(p: FloatArray, q: FloatArray, c: FloatArray, z: FloatArray, log_decay: FloatArray,
                    max_terms: int = 100_000) -> FloatArray:
    """exp(log_decay) * 2F1(p, q; c; z) for 0 <= z < 1, summing the Gauss series term by term in logs (each term
    is (p)_k (q)_k / ((c)_k k!) z^k), so that huge parameters neither overflow nor lose the decay. NaN where
    the series has not converged after `max_terms` terms."""
    total = np.zeros_like(z)
    log_term = np.asarray(log_decay, dtype=np.float64).copy()
    done = np.zeros(z.shape, dtype=bool)
    with np.errstate(divide="ignore"):
        log_z = np.log(z)
    for k in range(max_terms):
        term = np.exp(log_term)
        total = np.where(done, total, total + term)
        ratio = (p + k) * (q + k) / ((c + k) * (k + 1)) * z
        # past the largest term and each new one below the last digit of the sum: the rest cannot matter
        done |= (ratio < 1) & (term <= 1e-17 * total) | (z == 0)
        if np.all(done):
            return total
        log_term = log_term + np.log(p + k) + np.log(q + k) - np.log(c + k) - np.log(k + 1) + log_z
    return np.where(done, total, np.nan)


def _gg_checked(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    x, m = np.broadcast_arrays(x, m)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(m))):
        raise ModelError("frequency and monetary_value must be finite")
    if np.any(x <= 0) or np.any(m <= 0):
        raise ModelError("Gamma-Gamma needs customers with frequency > 0 and a positive average spend")
    return x, m


def _gg_ll_and_gradient(log_params: FloatArray, x: FloatArray, m: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-row Gamma-Gamma log-likelihood and its derivatives with respect to log p, log q, log v."""
    p, q, v = np.exp(log_params)
    px = p * x
    log_m, log_x, log_vxm = np.log(m), np.log(x), np.log(v + x * m)
    ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * log_m
          + px * log_x - (px + q) * log_vxm)
    psi_pxq = digamma(px + q)
    d_p = x * (psi_pxq - digamma(px) + log_m + log_x - log_vxm)
    d_q = psi_pxq - digamma(q) + np.log(v) - log_vxm
    d_v = q / v - (px + q) / (v + x * m)
    return ll, np.stack([d_p * p, d_q * q, d_v * v])


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike, *,
                    weights: ArrayLike | None = None) -> GammaGamma:
    """Fit the Gamma-Gamma spend model by maximum likelihood.

    Args:
        frequency: number of transactions x behind each average (repeat purchases, x > 0 only).
        monetary_value: each customer's average transaction value m_x over those x transactions.
        weights: optional number of customers each row stands for.

    Raises:
        ModelError: a row with x <= 0 or m_x <= 0 (filter customers without repeat purchases first), or no
            finite maximum (e.g. every customer spends exactly the same).
    """
    x, m = _gg_checked(frequency, monetary_value)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != x.shape or np.any(w < 0) or w.sum() <= 0:
        raise ModelError("weights must be non-negative, one per row, and not all zero")
    total = w.sum()

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ll, grad = _gg_ll_and_gradient(theta, x, m)
        return _mean_negative(ll, grad, w, total)

    return _with_total_ll(_maximise(objective, 3), total, GammaGamma)


def expected_average_spend(model: GammaGamma, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
    """Return E[mean transaction value | x, m_x] = (v + x m_x) p / (p x + q - 1).

    A customer with x = 0 (no repeat purchase, m_x meaningless) gets the population mean p v / (q - 1).

    Raises:
        ModelError: q <= 1, where the population mean spend is infinite.
    """
    if model.q <= 1:
        raise ModelError("the Gamma-Gamma mean spend is infinite when q <= 1")
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    x, m = np.broadcast_arrays(x, m)
    if np.any(x < 0) or np.any((x > 0) & ~(m > 0)):
        raise ModelError("need frequency >= 0 and a positive average spend where frequency > 0")
    m = np.where(x > 0, m, 0.0)
    return (model.v + x * m) * model.p / (model.p * x + model.q - 1)


def lifetime_value(bgnbd: BgNbd, gg: GammaGamma, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike,
                   monetary_value: ArrayLike, *, horizon_periods: int, discount_rate_per_period: float,
                   period_length: float = 1.0) -> FloatArray:
    """Return each customer's expected, discounted spend over the next `horizon_periods` periods.

        CLV = E[spend] * sum_{k=1..H} (E[Y(k L)] - E[Y((k - 1) L)]) / (1 + d)^k

    with E[Y(t)] the BG/NBD conditional expectation (eq. 10), L = `period_length` in the model's time unit
    (e.g. 52/12 weeks for months), d the discount rate per period and E[spend] the Gamma-Gamma expected
    average spend. Purchases in a period are discounted as if made at its end. Undiscounted with d = 0, the
    sum telescopes to E[Y(H L)].

    Args:
        bgnbd, gg: fitted models.
        frequency, recency, T: the BG/NBD summary, in the model's time unit.
        monetary_value: average value of the repeat purchases (anything for x = 0: they get the mean spend).
        horizon_periods: H, at least 1.
        discount_rate_per_period: d >= 0.
        period_length: L > 0.

    Raises:
        ModelError: invalid horizon, discount or inputs.
    """
    if int(horizon_periods) != horizon_periods or horizon_periods < 1:
        raise ModelError("horizon_periods must be a positive whole number")
    if not (np.isfinite(discount_rate_per_period) and discount_rate_per_period >= 0):
        raise ModelError("discount_rate_per_period must be finite and >= 0")
    if not (np.isfinite(period_length) and period_length > 0):
        raise ModelError("period_length must be finite and > 0")
    x, t_x, age = _bgnbd_checked(frequency, recency, T)
    spend = expected_average_spend(gg, x, monetary_value)
    discounted = np.zeros_like(x)
    previous = np.zeros_like(x)
    for k in range(1, int(horizon_periods) + 1):
        current = expected_purchases(bgnbd, k * period_length, x, t_x, age)
        discounted += (current - previous) / (1.0 + discount_rate_per_period) ** k
        previous = current
    return spend * discounted
