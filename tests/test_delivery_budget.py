"""The input consumer's byte budget: the prefetch it allows and when it pauses."""

from __future__ import annotations

from switchboard.delivery_budget import DeliveryBudget


def test_the_starting_prefetch_keeps_full_size_bodies_within_the_budget() -> None:
    assert DeliveryBudget(256 << 20, 1 << 20, 256).prefetch == 256
    assert DeliveryBudget(256 << 20, 8 << 20, 256).prefetch == 32
    assert DeliveryBudget(1 << 20, 8 << 20, 256).prefetch == 1  # never 0: RabbitMQ's unlimited


def test_an_oversized_body_drops_the_prefetch_to_one_and_settled_windows_double_it_back() -> None:
    budget = DeliveryBudget(8000, 1000, 8)
    assert budget.received(1, 5000) is True
    assert budget.wanted_prefetch() == 1
    budget.started(1)
    budget.settled(1)
    wanted = []
    for tag in range(2, 6):
        assert budget.received(tag, 100) is False
        assert budget.wanted_prefetch() == budget.prefetch  # not while the delivery is held
        budget.settled(tag)
        wanted.append(budget.wanted_prefetch())
        budget.started(wanted[-1])
        for extra in range(wanted[-1] - 1):  # fill the window of the new prefetch
            budget.received(100 + tag * 10 + extra, 100)
            budget.settled(100 + tag * 10 + extra)
    assert wanted == [2, 4, 8, 8]


def test_oversized_bodies_arriving_at_prefetch_one_keep_it_there_until_ordinary_ones_follow() -> (
    None
):
    budget = DeliveryBudget(8000, 1000, 8)
    budget.received(1, 5000)
    budget.started(budget.wanted_prefetch())
    budget.settled(1)
    budget.received(2, 5000)  # another one in the new window: still 1
    budget.settled(2)
    assert budget.wanted_prefetch() == 1
    budget.received(3, 100)
    budget.settled(3)
    assert budget.wanted_prefetch() == 2


def test_held_bytes_over_the_budget_pause_until_half_are_settled() -> None:
    budget = DeliveryBudget(3000, 1000, 50)
    for tag in range(1, 5):
        budget.received(tag, 900)
    assert budget.over and not budget.room_to_resume
    budget.settled(2, multiple=True)
    assert budget.held_bytes == 1800
    assert not budget.over and not budget.room_to_resume
    budget.settled(3)
    assert budget.room_to_resume
    budget.forget_all()
    assert budget.held_bytes == 0
