"""The staffing search: bracket then bisect, per team draw, each replay at most once."""

from __future__ import annotations

import pytest

from handoff.analytics.simulation import smallest
from handoff.analytics.simulation.smallest import _search
from handoff.analytics.simulation.smallest import smallest_team_over_draws
from handoff.analytics.simulation.synthetic import synthetic_workload


@pytest.mark.parametrize("guess,true_answer", [(92, 67), (4, 4), (5, 9), (1, 1), (10, 1), (3, 40)])
def test_search_finds_the_threshold_with_few_tries(guess, true_answer):
    tried: list[int] = []

    def meets(n: int) -> bool:
        tried.append(n)
        return n >= true_answer

    assert _search(meets, guess, limit=200) == true_answer
    assert len(tried) <= 2 * 8 + 2  # bracket + bisect: logarithmic, not a walk seat by seat
    assert true_answer == 1 or (true_answer - 1) in tried  # the answer is proven minimal


def test_search_gives_up_at_the_limit():
    assert _search(lambda n: n >= 500, 10, limit=50) is None


def test_draws_are_searched_and_replays_are_not_repeated(monkeypatch):
    wl = synthetic_workload(n_items=300, arrivals_per_hour=40, seed=1, skills_per_rep=2)
    calls: list[tuple[int, int]] = []
    real = smallest.run_one

    def counting(workload, policy, n, seed):
        calls.append((n, seed))
        return real(workload, policy, n, seed)

    monkeypatch.setattr(smallest, "run_one", counting)
    found = smallest_team_over_draws(wl, "push", 0.9, seed=3, draws=5)
    assert sorted(found.by_draw) == [3, 4, 5, 6, 7]
    assert len(calls) == len(set(calls)) == len(found.trials)
    assert found.answer == max(found.by_draw.values()) and found.low == min(found.by_draw.values())
    on = {(t.staff, t.draw): t.on_time_pct for t in found.trials}
    for draw, n in found.by_draw.items():
        assert on[(n, draw)] >= 90 and (n == 1 or on[(n - 1, draw)] < 90)
    with pytest.raises(ValueError):
        smallest_team_over_draws(wl, "push", 1.5)
