"""Staffing maths: how many people a queue of work needs to meet a service level.

Queueing formulas for work that arrives at random (Poisson) and takes a random time to handle
(exponential), with `n` interchangeable people:

- Erlang B   — share of arrivals that find everybody busy when nobody waits (M/M/n/n).
- Erlang C   — probability an arrival has to wait when everybody waits as long as needed (M/M/n);
               from it: service level (answered within T), average speed of answer (ASA),
               occupancy, and the smallest team meeting a target.
- Erlang A   — like Erlang C but customers give up after an exponential patience (M/M/n+M,
               Palm's model): probability of waiting, of abandoning, service level, ASA.
- Square-root staffing — N = R + beta * sqrt(R): the protective capacity above the offered load R
               that the team needs, and the Halfin–Whitt link between beta and P(wait).

Why these recurrences: the textbook formulas use a^n / n! which overflows long before call
centre sizes (a = 200 Erlangs). Erlang B has a stable recurrence,
B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)), and Erlang C and Erlang A are written in terms of
B. Erlang A's queue part is a positive series summed in log space. No scipy needed.

Units: rates per second and times in seconds unless a name says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from dataclasses import dataclass

# --- Erlang B / C -----------------------------------------------------------------------------


def erlang_b(n: int, load: float) -> float:
    """Blocking probability with `n` servers and offered load `load` Erlangs (stable recurrence)."""
    if n < 0 or load < 0:
        raise ValueError("n and load must be non-negative")
    b = 1.0
    for k in range(1, n + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(n: int, load: float) -> float:
    """Probability that an arrival waits (all `n` busy); 1.0 when the team cannot keep up."""
    if load <= 0:
        return 0.0
    if n <= load:
        return 1.0
    b = erlang_b(n, load)
    return n * b / (n - load * (1.0 - b))


def service_level(n: int, load: float, aht: float, target_seconds: float) -> float:
    """Share of arrivals that start within `target_seconds` (Erlang C, FIFO)."""
    if n <= load:
        return 0.0
    return 1.0 - erlang_c(n, load) * math.exp(-(n - load) * target_seconds / aht)


def average_speed_of_answer(n: int, load: float, aht: float) -> float:
    """Mean wait over all arrivals, seconds (Erlang C); infinite when overloaded."""
    if n <= load:
        return math.inf
    return erlang_c(n, load) * aht / (n - load)


@dataclass(frozen=True)
class ErlangCStaffing:
    """The answer to "how many people?" for one interval, as a manager reads it."""

    arrivals_per_hour: float
    aht_seconds: float
    offered_load: float  # Erlangs = people busy on average
    target_sl: float
    target_seconds: float
    agents_raw: int  # smallest team meeting the service level
    agents_occupancy_capped: int  # ... and keeping occupancy at or under the cap
    agents_rostered: int  # ... grossed up for shrinkage (breaks, training, absence)
    max_occupancy: float | None
    shrinkage: float
    p_wait: float
    service_level: float
    asa_seconds: float
    occupancy: float
    sqrt_beta: float  # beta in N = R + beta sqrt(R) implied by the answer
    protective_capacity: float  # N - R, people beyond the offered load

    def as_dict(self) -> dict:
        return asdict(self)


def _offered_load(arrivals_per_hour: float, aht_seconds: float) -> float:
    if not (0 <= arrivals_per_hour < math.inf and 0 < aht_seconds < math.inf):  # NaN fails both
        raise ValueError("arrivals must be >= 0 and handling time > 0 (finite numbers)")
    return arrivals_per_hour * aht_seconds / 3600.0


def agents_for_service_level(
    arrivals_per_hour: float,
    aht_seconds: float,
    target_sl: float,
    target_seconds: float,
    max_occupancy: float | None = None,
    shrinkage: float = 0.0,
    max_agents: int = 100_000,
) -> ErlangCStaffing:
    """Smallest Erlang C team for `target_sl` within `target_seconds`, then the occupancy cap,
    then the roster after shrinkage (rostered = ceil(N / (1 - shrinkage)))."""
    if not 0 < target_sl < 1:
        raise ValueError("target service level must be between 0 and 1")
    if not 0 <= target_seconds < math.inf:
        raise ValueError("the service-level threshold must be a finite number of seconds >= 0")
    if not 0 <= shrinkage < 1:
        raise ValueError("shrinkage must be in [0, 1)")
    if max_occupancy is not None and not 0 < max_occupancy <= 1:
        raise ValueError("max occupancy must be in (0, 1]")
    load = _offered_load(arrivals_per_hour, aht_seconds)
    n = max(1, math.floor(load) + 1)
    while service_level(n, load, aht_seconds, target_seconds) < target_sl:
        n += 1
        if n > max_agents:
            raise ValueError("no team up to max_agents meets the target")
    raw = n
    if max_occupancy is not None:
        n = max(n, math.ceil(load / max_occupancy - 1e-12))
    rostered = math.ceil(n / (1.0 - shrinkage) - 1e-12)
    return ErlangCStaffing(
        arrivals_per_hour=arrivals_per_hour,
        aht_seconds=aht_seconds,
        offered_load=load,
        target_sl=target_sl,
        target_seconds=target_seconds,
        agents_raw=raw,
        agents_occupancy_capped=n,
        agents_rostered=rostered,
        max_occupancy=max_occupancy,
        shrinkage=shrinkage,
        p_wait=erlang_c(n, load),
        service_level=service_level(n, load, aht_seconds, target_seconds),
        asa_seconds=average_speed_of_answer(n, load, aht_seconds),
        occupancy=load / n if n else 0.0,
        sqrt_beta=implied_beta(n, load),
        protective_capacity=n - load,
    )


# --- Square-root staffing ----------------------------------------------------------------------


def sqrt_staffing(load: float, beta: float) -> int:
    """N = ceil(R + beta sqrt(R)): offered load plus protective capacity growing like sqrt(R)."""
    return math.ceil(load + beta * math.sqrt(load) - 1e-12)


def implied_beta(n: int, load: float) -> float:
    """The beta a team of `n` represents for load `load`: (N - R) / sqrt(R)."""
    return (n - load) / math.sqrt(load) if load > 0 else math.inf


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def halfin_whitt_wait_probability(beta: float) -> float:
    """Large-team limit of Erlang C at N = R + beta sqrt(R): 1 / (1 + beta Phi(beta) / phi(beta))."""
    if beta <= 0:
        return 1.0
    return 1.0 / (1.0 + beta * _Phi(beta) / _phi(beta))


def beta_for_wait_probability(p_wait: float) -> float:
    """The beta whose Halfin–Whitt wait probability is `p_wait` (bisection; decreasing in beta)."""
    if not 0 < p_wait < 1:
        raise ValueError("p_wait must be between 0 and 1")
    lo, hi = 0.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if halfin_whitt_wait_probability(mid) > p_wait:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# --- Erlang A (M/M/n+M) --------------------------------------------------------------------------


MAX_QUEUE_TERMS = 2_000_000  # Erlang A sums one term per caller queued: a longer queue is not a staffing question


def _log_sum_exp(values: list[float]) -> float:
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


def _log_A(x: float, y: float, tol: float = 1e-17) -> float:
    """log A(x, y) where A(x, y) = 1 + sum_{j>=1} y^j / prod_{k=1..j} (x + k)
    (= x e^y y^-x gamma(x, y), Mandelbaum & Zeltyn). Terms are summed in log space: they rise
    while x + j < y and then fall geometrically, so we stop once past the peak and negligible."""
    logs = [0.0]
    log_term = 0.0
    log_y = math.log(y)
    j = 0
    peak = 0.0
    while True:
        j += 1
        log_term += log_y - math.log(x + j)
        logs.append(log_term)
        peak = max(peak, log_term)
        if x + j > y and log_term < peak + math.log(tol) and j > 10:
            break
        if j > 10_000_000:  # pragma: no cover - guard against a runaway loop
            break
    return _log_sum_exp(logs)


def _regularized_beta_integer_a(x: float, m: int, b: float) -> list[float]:
    """I_x(a, b) for a = 1..m via I_x(a+1, b) = I_x(a, b) - x^a (1-x)^b Γ(a+b) / (Γ(a+1) Γ(b)).
    Absolute error stays ~1e-16 per step, which is what a service level needs."""
    out = []
    if x <= 0:
        return [0.0] * m
    if x >= 1:  # the whole target window: every wait that short is within it
        return [1.0] * m
    log_x, log_1mx = math.log(x), math.log1p(-x)
    value = -math.expm1(b * log_1mx)  # I_x(1, b) = 1 - (1-x)^b
    for a in range(1, m + 1):
        out.append(min(1.0, max(0.0, value)))
        log_t = a * log_x + b * log_1mx + math.lgamma(a + b) - math.lgamma(a + 1) - math.lgamma(b)
        value -= math.exp(log_t)
    return out


@dataclass(frozen=True)
class ErlangA:
    """Steady state of a team of `n` where callers abandon after an exponential patience."""

    n: int
    offered_load: float
    p_wait: float  # P(an arrival finds everybody busy)
    p_abandon: float  # P(an arrival gives up before being served)
    service_level: float  # P(served and waited at most target_seconds); abandons count as misses
    asa_seconds: float  # mean wait over all arrivals (served or not) = E[queue] / lambda
    occupancy: float  # busy people / n (only served work occupies people)

    def as_dict(self) -> dict:
        return asdict(self)


def erlang_a(
    n: int,
    arrivals_per_hour: float,
    aht_seconds: float,
    patience_seconds: float,
    target_seconds: float = 0.0,
) -> ErlangA:
    """Palm's M/M/n+M model: arrival rate lambda, service rate mu = 1/AHT, patience rate
    theta = 1/mean patience.

    P(wait) = A E / (1 + (A - 1) E) with E = Erlang B(n, lambda/mu), A = A(n mu/theta, lambda/theta);
    P(abandon | wait) = 1/(rho A) + 1 - 1/rho with rho = lambda/(n mu) (Mandelbaum & Zeltyn 2007).
    Service level: an arrival finding i people queued ahead is served within t with probability
    n mu / (n mu + (i+1) theta) * I_{1-exp(-theta t)}(i+1, n mu/theta + 1) (its wait is a sum of
    exponentials with equally spaced rates; derived in docs/simulation.md), weighted by the queue
    distribution pi_{n+i} ∝ (lambda/theta)^i / prod_{k<=i}(n mu/theta + k).
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    if not (0 < patience_seconds < math.inf and 0 < aht_seconds < math.inf):  # NaN fails both
        raise ValueError("patience and handling time must be positive, finite numbers of seconds")
    lam = arrivals_per_hour / 3600.0
    mu = 1.0 / aht_seconds
    theta = 1.0 / patience_seconds
    load = lam / mu
    if lam == 0:
        return ErlangA(n, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    x, y = n * mu / theta, lam / theta
    if y - x > MAX_QUEUE_TERMS:
        raise ValueError(
            f"{n} agents would hold a queue of about {y - x:,.0f} callers: mean patience "
            f"{patience_seconds:g} s is too long for Erlang A at this load (leave patience out for Erlang C)"
        )
    e_b = erlang_b(n, load)
    log_a = _log_A(x, y)
    # P(W>0) = 1 / (1 + (1 - E) / (A E)), in logs so a huge A cannot overflow.
    p_wait = 1.0 / (1.0 + (1.0 - e_b) * math.exp(-log_a) / e_b) if e_b > 0 else 0.0
    rho = lam / (n * mu)
    p_ab_given_wait = math.exp(-log_a) / rho + 1.0 - 1.0 / rho  # 1 / (rho A), without overflowing A
    p_abandon = max(0.0, min(1.0, p_ab_given_wait * p_wait))
    asa = p_abandon / theta  # E[Q]/lambda and theta E[Q] = lambda P(Ab)
    occupancy = load * (1.0 - p_abandon) / n

    # Service level: P(no wait) + sum_i pi_{n+i} * P(served within t | i ahead).
    sl = 1.0 - p_wait
    if target_seconds > 0 and p_wait > 0:  # nobody waits (too impatient, or idle): sl is 1 - 0
        log_pi_n = math.log(p_wait) - log_a  # pi_n = P(W>0) / A
        u = -math.expm1(-theta * target_seconds)
        b = x + 1.0
        # Queue lengths worth summing: the terms of A beyond the tail are negligible.
        weights: list[float] = []
        log_term, i = 0.0, 0
        while True:
            w = math.exp(min(0.0, log_pi_n + log_term))  # a probability; rounding must not overflow
            weights.append(w)
            i += 1
            log_term += math.log(y) - math.log(x + i)
            if x + i > y and w < 1e-16 and i > 10:
                break
        ib = _regularized_beta_integer_a(u, len(weights), b)
        for i, w in enumerate(weights):
            m = i + 1
            sl += w * (n * mu / (n * mu + m * theta)) * ib[i]
    return ErlangA(
        n=n,
        offered_load=load,
        p_wait=p_wait,
        p_abandon=p_abandon,
        service_level=min(1.0, max(0.0, sl)),
        asa_seconds=asa,
        occupancy=occupancy,
    )


def agents_for_service_level_erlang_a(
    arrivals_per_hour: float,
    aht_seconds: float,
    patience_seconds: float,
    target_sl: float,
    target_seconds: float,
    max_agents: int = 100_000,
) -> ErlangA:
    """Smallest team whose Erlang A service level (abandons count as misses) meets the target.

    The service level grows with the team, so the answer is bisected: no team below
    `target_sl` x the offered load can serve that share of the callers at all, and from there the
    team doubles until it meets the target. Tens of evaluations instead of one per agent (a
    linear search took a minute at 16,000 Erlangs)."""
    if not 0 < target_sl < 1:
        raise ValueError("target service level must be between 0 and 1")

    def meets(n: int) -> ErlangA | None:
        result = erlang_a(n, arrivals_per_hour, aht_seconds, patience_seconds, target_seconds)
        return result if result.service_level >= target_sl else None

    low = max(1, math.floor(target_sl * _offered_load(arrivals_per_hour, aht_seconds)))  # fails or is the answer
    if (found := meets(low)) is not None:
        return found
    step = 1
    while (found := meets(low + step)) is None:
        low, step = low + step, step * 2
        if low + step > max_agents:
            if (found := meets(max_agents)) is None:
                raise ValueError("no team up to max_agents meets the target")
            step = max_agents - low
            break
    high = low + step  # low fails, high meets
    while high - low > 1:
        mid = (low + high) // 2
        if (at_mid := meets(mid)) is not None:
            high, found = mid, at_mid
        else:
            low = mid
    return found
