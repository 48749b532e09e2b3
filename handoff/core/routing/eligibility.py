"""Who may take a work item: skills at the required level, and being at work right now.

Kept free of the database so the policies, the simulator and the live router share one
definition of "eligible". Shifts and time zones are handoff.core.clock's; the policies only see
`RoutableRep.available`.
"""

from __future__ import annotations

Signature = tuple[tuple[str, int], ...]


def signature(required: dict[str, int]) -> Signature:
    """A hashable key for a set of skill requirements; items with equal keys are interchangeable
    as far as eligibility goes, which is what lets the index bucket them."""
    return tuple(sorted(required.items()))


def meets(skills: dict[str, int], required: dict[str, int]) -> bool:
    """Does a rep hold every required skill at (at least) the required level?"""
    for skill, level in required.items():
        if skills.get(skill, 0) < level:
            return False
    return True


def overqualification(skills: dict[str, int], required: dict[str, int]) -> int:
    """Levels above what the item needs, summed over its skills: an expert on trivia scores
    high. The router prefers the lowest, to keep experts free for the hard work."""
    return sum(skills.get(skill, 0) - level for skill, level in required.items())


def widened(required: dict[str, int], steps: int = 1) -> dict[str, int]:
    """Requirements one level lower (never below 1): the wider pool an escalated item may
    go to when nobody at the full level is free in time."""
    return {skill: max(1, level - steps) for skill, level in required.items()}


def effective_requirements(required: dict[str, int], escalated: bool) -> dict[str, int]:
    """What the router actually asks for: the item's own requirements, widened once escalated."""
    return widened(required) if escalated else dict(required)
