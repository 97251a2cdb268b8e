"""RetryPolicy's waits: exponential, capped, jittered within [cap/2, cap]; bad settings refused."""

from __future__ import annotations

import pytest

from backorder.client import NO_RETRY, BackorderClient, RetryPolicy


def test_waits_grow_exponentially_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(attempts=6, initial_backoff=0.5, max_backoff=4.0, multiplier=2.0)
    caps = [0.5, 1.0, 2.0, 4.0, 4.0]
    for retry, cap in enumerate(caps, start=1):
        waits = {policy.backoff(retry) for _ in range(200)}
        assert all(cap / 2 <= w <= cap for w in waits), (retry, min(waits), max(waits))
        assert len(waits) > 100, "no jitter"  # clients do not come back in lockstep


def test_defaults_ride_out_about_four_to_seven_and_a_half_seconds() -> None:
    policy = RetryPolicy()
    waits = [[policy.backoff(n) for _ in range(200)] for n in range(1, policy.attempts)]
    assert len(waits) == 4  # 5 tries
    assert sum(min(w) for w in waits) >= 3.75 and sum(max(w) for w in waits) <= 7.5
    assert NO_RETRY.attempts == 1


@pytest.mark.parametrize(
    "settings",
    [
        {"attempts": 0},
        {"initial_backoff": -1.0},
        {"initial_backoff": 5.0, "max_backoff": 1.0},
        {"multiplier": 0.5},
    ],
)
def test_bad_policies_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**settings)  # type: ignore[arg-type]


async def test_a_client_needs_a_positive_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        BackorderClient(timeout=0)
