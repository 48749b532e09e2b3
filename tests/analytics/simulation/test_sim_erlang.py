"""The simulator agrees with queueing theory: M/M/n under FIFO reproduces Erlang C.

Set-up: one work type, Poisson arrivals, exponential handling, `n` identical always-on reps,
the real FIFO policy from handoff.core.routing.baselines. Measured per item: did it wait at all
(start > ready), and did it start within T seconds.

Tolerance: consecutive arrivals are correlated, so a plain binomial standard error would be too
small. We use batch means: after a warm-up of 2,000 items, the remaining ~48,000 items are cut
into 20 batches of consecutive arrivals; the batch averages are close to independent, and
SE = sd(batch averages) / sqrt(20) (about 0.005-0.01 here). We require
|simulated - Erlang C| <= 4 SE (a false alarm about once in a thousand runs with a t(19)
distribution; the seed is fixed, so the test is deterministic) and SE <= 0.02 so the check has
teeth. Each run replays 50,000 items in about a second.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from handoff.analytics import staffing
from handoff.analytics.simulation.calendar import ALWAYS_OPEN
from handoff.analytics.simulation.engine import RepSpec
from handoff.analytics.simulation.engine import simulate
from handoff.analytics.simulation.synthetic import TypeSpec
from handoff.analytics.simulation.synthetic import synthetic_workload

N_ITEMS = 50_000
WARM_UP = 2_000
BATCHES = 20


def _mm_n(reps: int, load: float, aht: float, seed: int):
    per_hour = load * 3600 / aht
    wl = synthetic_workload(
        n_items=N_ITEMS,
        arrivals_per_hour=per_hour,
        types=(TypeSpec("case", 1.0, aht, 3600.0),),
        calendar=ALWAYS_OPEN,
        seed=seed,
    )
    team = [RepSpec(f"r{k}", {"case": 1}) for k in range(reps)]
    return wl, team


def _batch_stats(flags: np.ndarray) -> tuple[float, float]:
    kept = flags[WARM_UP:]
    usable = len(kept) - len(kept) % BATCHES
    means = kept[:usable].reshape(BATCHES, -1).mean(axis=1)
    return float(kept.mean()), float(means.std(ddof=1) / math.sqrt(BATCHES))


@pytest.mark.parametrize(("reps", "load", "target"), [(5, 4.0, 20.0), (2, 1.0, 30.0)])
def test_fifo_reproduces_erlang_c_wait_probability_and_service_level(reps, load, target):
    aht = 60.0
    wl, team = _mm_n(reps, load, aht, seed=11)
    result = simulate(wl.items, team, "fifo", seed=0)
    assert int((~np.isnan(result.finish)).sum()) == N_ITEMS
    wait = result.start - result.ready  # items are in arrival order
    p_wait, se_wait = _batch_stats((wait > 1e-9).astype(float))
    sl, se_sl = _batch_stats((wait <= target).astype(float))

    theory_wait = staffing.erlang_c(reps, load)
    theory_sl = staffing.service_level(reps, load, aht, target)
    assert se_wait <= 0.02 and se_sl <= 0.02
    assert abs(p_wait - theory_wait) <= 4 * se_wait, (p_wait, theory_wait, se_wait)
    assert abs(sl - theory_sl) <= 4 * se_sl, (sl, theory_sl, se_sl)
    # Utilisation of identical always-on reps is the offered load per rep.
    assert result.metrics().utilisation == pytest.approx(load / reps, abs=0.02)


@pytest.mark.parametrize("policy", ["push", "self"])
def test_every_work_conserving_policy_has_the_erlang_c_wait_probability(policy):
    """With one work type and identical reps, who goes first changes *which* items wait but
    not *how many*: any policy that never idles a rep while work waits has Erlang C's P(wait).
    This checks the simulator hands work to free reps under the other policies too."""
    wl, team = _mm_n(5, 4.0, 60.0, seed=12)
    result = simulate(wl.items, team, policy, seed=0)
    p_wait, se = _batch_stats((result.start - result.ready > 1e-9).astype(float))
    assert abs(p_wait - staffing.erlang_c(5, 4.0)) <= 4 * se
