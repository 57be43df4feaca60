"""Capacity advice: the fewest extra lanes that bring the wait under the warning threshold in 2 h."""

import pytest

from streams.domain.state import lanes_needed


def wait_after_two_hours(queue, rate, capacity, lanes):
    left = max(0.0, queue + rate * 2 - lanes * capacity * 2)
    return left / (lanes * capacity)


@pytest.mark.parametrize(
    ("queue", "rate", "capacity", "warning_h", "lanes"),
    [(600, 100, 30, 2, 1), (50, 10, 40, 2, 2), (2000, 400, 20, 2, 2), (0, 0, 30, 2, 1), (120, 90, 30, 0.75, 3)],
)
def test_advice_is_the_minimum_that_works(queue, rate, capacity, warning_h, lanes):
    extra = lanes_needed(queue, rate, capacity, warning_h * 3600, lanes)
    # Enough: with the extra lanes (none, when the open ones suffice) the wait ends under the threshold.
    assert wait_after_two_hours(queue, rate, capacity, lanes + extra) < warning_h
    if extra > 0:  # and the fewest: one lane less would not do
        assert wait_after_two_hours(queue, rate, capacity, lanes + extra - 1) >= warning_h


def test_worked_example():
    # 600 parties waiting, 100 arriving an hour, 30 per lane-hour, 2 h warning, 1 lane open: 6 more.
    assert lanes_needed(600, 100, 30, 7200, 1) == 6
