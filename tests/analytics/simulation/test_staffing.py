"""Staffing maths against published examples and independent brute-force methods.

Every published number asserted here was recomputed in the test itself by a second, independent
method (exact rational arithmetic of the textbook formula, or a direct sum over the birth-death
chain), so a test fails if either the code or our reading of the source is wrong.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from handoff.analytics import staffing


def erlang_c_exact(n: int, load: int | Fraction) -> Fraction:
    """Textbook Erlang C, P(wait) = [A^N/N! * N/(N-A)] / [sum_{k<N} A^k/k! + A^N/N! * N/(N-A)],
    in exact rational arithmetic: no recurrence, no floating point."""
    a = Fraction(load)
    top = a**n / math.factorial(n) * Fraction(n) / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


def erlang_b_exact(n: int, load: int | Fraction) -> Fraction:
    a = Fraction(load)
    return (a**n / math.factorial(n)) / sum(a**k / math.factorial(k) for k in range(n + 1))


def test_erlang_b_matches_the_published_table_and_the_exact_formula():
    """Erlang B tables (e.g. any teletraffic textbook's blocking table): 2 Erlangs offered to
    5 lines are blocked 3.67 % of the time; 10 Erlangs on 10 lines 21.5 %."""
    assert staffing.erlang_b(5, 2.0) == pytest.approx(float(erlang_b_exact(5, 2)), rel=1e-12)
    assert round(staffing.erlang_b(5, 2.0), 4) == 0.0367
    assert staffing.erlang_b(10, 10.0) == pytest.approx(float(erlang_b_exact(10, 10)), rel=1e-12)
    assert round(staffing.erlang_b(10, 10.0), 3) == 0.215


def test_call_centre_helper_worked_example():
    """Call Centre Helper, "Erlang C Formula - Made Simple with an Easy Worked Example":
    100 calls in 30 minutes, AHT 180 s -> 10 Erlangs; with 11 agents P(wait) = 68.21 % and the
    service level for 20 s is 39.0 %; 80/20 needs 14 agents (SL 88.8 %), and 30 % shrinkage
    makes that 20 on the roster. 13 agents fall just short (79.6 %)."""
    load = 100 * 180 / 1800
    assert load == 10
    for n in (11, 12, 13, 14, 15):
        assert staffing.erlang_c(n, load) == pytest.approx(float(erlang_c_exact(n, 10)), rel=1e-12)
    assert round(staffing.erlang_c(11, load), 4) == 0.6821
    assert round(staffing.service_level(11, load, 180, 20), 3) == 0.390
    assert staffing.service_level(13, load, 180, 20) < 0.8 < staffing.service_level(14, load, 180, 20)
    # Independent SL: 1 - C e^{-(N-A) t / AHT} with the exact C.
    sl14 = 1 - float(erlang_c_exact(14, 10)) * math.exp(-(14 - 10) * 20 / 180)
    assert staffing.service_level(14, load, 180, 20) == pytest.approx(sl14, rel=1e-12)
    assert round(sl14, 3) == 0.888

    answer = staffing.agents_for_service_level(200, 180, 0.8, 20, shrinkage=0.3)
    assert answer.offered_load == pytest.approx(10.0)
    assert answer.agents_raw == 14
    assert answer.agents_rostered == 20  # ceil(14 / 0.7)
    assert answer.asa_seconds == pytest.approx(float(erlang_c_exact(14, 10)) * 180 / 4, rel=1e-12)
    assert answer.occupancy == pytest.approx(10 / 14)


def test_occupancy_cap_raises_the_team_when_the_service_level_alone_would_burn_people_out():
    # 10 Erlangs: the SL needs 14 (occupancy 71 %); a 60 % occupancy cap needs ceil(10/0.6) = 17.
    answer = staffing.agents_for_service_level(200, 180, 0.8, 20, max_occupancy=0.6)
    assert answer.agents_raw == 14
    assert answer.agents_occupancy_capped == 17
    assert answer.occupancy <= 0.6
    # A loose cap changes nothing.
    assert staffing.agents_for_service_level(200, 180, 0.8, 20, max_occupancy=0.9).agents_occupancy_capped == 14


def test_large_teams_do_not_overflow_and_agree_with_exact_arithmetic():
    # 280 Erlangs: A^N / N! overflows floats; the recurrence must not.
    c = staffing.erlang_c(300, 280.0)
    assert 0 < c < 1
    assert c == pytest.approx(float(erlang_c_exact(300, 280)), rel=1e-9)
    assert staffing.erlang_c(280, 280.0) == 1.0  # no team of exactly R keeps up
    assert staffing.service_level(250, 280.0, 180, 20) == 0.0


def test_square_root_staffing_and_halfin_whitt():
    assert staffing.implied_beta(14, 10.0) == pytest.approx(4 / math.sqrt(10))
    assert staffing.sqrt_staffing(100.0, 1.0) == 110
    # Round trip of the Halfin-Whitt function.
    for beta in (0.3, 1.0, 2.0):
        alpha = staffing.halfin_whitt_wait_probability(beta)
        assert staffing.beta_for_wait_probability(alpha) == pytest.approx(beta, abs=1e-9)
    # For a large team the limit is close to exact Erlang C (Halfin & Whitt 1981).
    load = 400.0
    n = staffing.sqrt_staffing(load, 1.0)
    assert staffing.erlang_c(n, load) == pytest.approx(staffing.halfin_whitt_wait_probability(1.0), abs=0.02)


def _erlang_a_brute_force(n: int, per_hour: float, aht: float, patience: float, k_max: int = 4000):
    """P(wait) and P(abandon) straight from the birth-death chain of M/M/n+M, summed in logs."""
    lam, mu, theta = per_hour / 3600, 1 / aht, 1 / patience
    logp = [0.0]
    for k in range(1, k_max):
        rate = k * mu if k <= n else n * mu + (k - n) * theta
        logp.append(logp[-1] + math.log(lam / rate))
    m = max(logp)
    p = [math.exp(v - m) for v in logp]
    total = sum(p)
    p = [v / total for v in p]
    p_wait = sum(p[n:])
    queue = sum((k - n) * p[k] for k in range(n, k_max))
    return p, p_wait, theta * queue / lam


@pytest.mark.parametrize("args", [(14, 200, 180, 120), (10, 250, 180, 60), (5, 150, 120, 300), (30, 1200, 90, 45)])
def test_erlang_a_matches_the_birth_death_chain(args):
    n, per_hour, aht, patience = args
    _, p_wait, p_abandon = _erlang_a_brute_force(n, per_hour, aht, patience)
    a = staffing.erlang_a(n, per_hour, aht, patience, target_seconds=20)
    assert a.p_wait == pytest.approx(p_wait, rel=1e-9)
    assert a.p_abandon == pytest.approx(p_abandon, rel=1e-9)
    assert a.asa_seconds == pytest.approx(p_abandon * patience, rel=1e-9)  # Little: E[Q]/lambda


def test_erlang_a_service_level_matches_a_monte_carlo_of_the_waiting_time():
    """Independent check of the SL formula: sample the state an arrival finds from the chain,
    then its wait as the sum of exponential phases (people ahead served or giving up) against
    its own patience. 40,000 samples: standard error ~0.0025; we allow 4 standard errors."""
    n, per_hour, aht, patience, t = 10, 250, 180, 60, 30
    p, _, _ = _erlang_a_brute_force(n, per_hour, aht, patience, k_max=400)
    mu, theta = 1 / aht, 1 / patience
    rng = random.Random(7)
    cum = []
    s = 0.0
    for v in p:
        s += v
        cum.append(s)
    hits, samples = 0, 40_000
    import bisect

    for _ in range(samples):
        k = bisect.bisect_left(cum, rng.random() * cum[-1])
        if k < n:
            hits += 1
            continue
        wait = sum(rng.expovariate(n * mu + j * theta) for j in range(k - n, -1, -1))
        if wait <= t and wait <= rng.expovariate(theta):
            hits += 1
    estimate = hits / samples
    se = math.sqrt(estimate * (1 - estimate) / samples)
    assert staffing.erlang_a(n, per_hour, aht, patience, t).service_level == pytest.approx(estimate, abs=4 * se)


def test_erlang_a_tends_to_erlang_c_as_patience_grows():
    c_wait = staffing.erlang_c(14, 10.0)
    c_sl = staffing.service_level(14, 10.0, 180, 20)
    c_asa = staffing.average_speed_of_answer(14, 10.0, 180)
    previous_abandon = 1.0
    for patience in (60, 600, 6_000, 60_000, 1e7):
        a = staffing.erlang_a(14, 200, 180, patience, 20)
        assert a.p_abandon < previous_abandon  # more patience, fewer give up
        previous_abandon = a.p_abandon
    assert a.p_wait == pytest.approx(c_wait, rel=1e-4)
    assert a.service_level == pytest.approx(c_sl, rel=1e-4)
    assert a.asa_seconds == pytest.approx(c_asa, rel=1e-4)
    assert a.p_abandon < 1e-5


def test_erlang_a_keeps_an_overloaded_queue_finite_and_needs_fewer_agents_than_erlang_c():
    # 12 Erlangs on 10 agents: Erlang C has no steady state; with abandonment Erlang A does.
    a = staffing.erlang_a(10, 240, 180, 120, 20)
    assert 0 < a.p_abandon < 1 and 0.5 < a.p_wait < 1
    assert a.occupancy <= 1.0
    need_a = staffing.agents_for_service_level_erlang_a(200, 180, 120, 0.8, 20)
    need_c = staffing.agents_for_service_level(200, 180, 0.8, 20)
    assert need_a.service_level >= 0.8
    assert need_a.n <= need_c.agents_raw
    if need_a.n > 1:
        smaller = staffing.erlang_a(need_a.n - 1, 200, 180, 120, 20)
        assert smaller.service_level < 0.8


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        staffing.agents_for_service_level(100, 180, 1.5, 20)
    with pytest.raises(ValueError):
        staffing.agents_for_service_level(100, 0, 0.8, 20)
    with pytest.raises(ValueError):
        staffing.agents_for_service_level(100, 180, 0.8, 20, shrinkage=1.0)
    with pytest.raises(ValueError):
        staffing.erlang_a(0, 100, 180, 60)


@pytest.mark.parametrize(
    ("per_hour", "aht", "patience", "target_sl", "t"),
    [
        (200, 180, 120, 0.8, 20),
        (30, 600, 60, 0.9, 30),
        (500, 240, 900, 0.5, 10),
        (5, 300, 30, 0.95, 0),
        (1, 60, 5, 0.2, 1),
    ],
)
def test_erlang_a_team_is_the_smallest_one_meeting_the_target(per_hour, aht, patience, target_sl, t):
    """The bisected answer is the one team-by-team counting finds."""
    need = staffing.agents_for_service_level_erlang_a(per_hour, aht, patience, target_sl, t)
    assert need.service_level >= target_sl
    levels = [staffing.erlang_a(n, per_hour, aht, patience, t).service_level for n in range(1, need.n + 1)]
    assert all(b >= a - 1e-12 for a, b in zip(levels, levels[1:]))  # more people never serve fewer in time
    assert next(n for n, sl in enumerate(levels, 1) if sl >= target_sl) == need.n


def test_erlang_a_answers_at_the_edges_of_patience_and_load():
    # So impatient that nobody waits: whoever finds everyone busy leaves at once (Erlang B's loss).
    a = staffing.erlang_a(2, 10, 600, 1e-9, 20)
    lost = staffing.erlang_b(2, 10 * 600 / 3600)
    assert a.p_abandon == pytest.approx(lost, rel=1e-6) and a.service_level == pytest.approx(1 - lost, rel=1e-6)
    # A very large queue is named rather than summed (or overflowed).
    with pytest.raises(ValueError, match="too long for Erlang A"):
        staffing.erlang_a(1, 10, 600, 1e12, 20)
    # 16,667 Erlangs: a team found in a few dozen evaluations, meeting the target, with one less failing.
    need = staffing.agents_for_service_level_erlang_a(100_000, 600, 60, 0.8, 20)
    assert need.service_level >= 0.8
    assert staffing.erlang_a(need.n - 1, 100_000, 600, 60, 20).service_level < 0.8


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_numbers_that_are_not_numbers_are_refused(bad):
    with pytest.raises(ValueError):
        staffing.agents_for_service_level(bad, 180, 0.8, 20)
    with pytest.raises(ValueError):
        staffing.agents_for_service_level(100, bad, 0.8, 20)
    with pytest.raises(ValueError):
        staffing.agents_for_service_level(100, 180, 0.8, bad)
    with pytest.raises(ValueError):
        staffing.erlang_a(3, 100, 180, bad, 20)
