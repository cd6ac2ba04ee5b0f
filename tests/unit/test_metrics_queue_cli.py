"""The scaling rule `chorus queue` reports (KEDA's Redis list rule)."""

from chorus.broker.queues import queue_lists
from chorus.metrics.queue_cli import desired_workers


def test_workers_follow_depth_over_target_within_bounds() -> None:
    assert desired_workers(depth=0, running=0, target=4, minimum=0, maximum=8) == 0
    assert desired_workers(depth=1, running=0, target=4, minimum=0, maximum=8) == 1
    assert desired_workers(depth=9, running=0, target=4, minimum=0, maximum=8) == 3
    assert desired_workers(depth=100, running=0, target=4, minimum=0, maximum=8) == 8
    assert desired_workers(depth=0, running=2, target=4, minimum=0, maximum=8) == 1  # running work keeps a worker
    assert desired_workers(depth=2, running=0, target=4, minimum=0, maximum=8, activation=2) == 0
    assert desired_workers(depth=0, running=0, target=4, minimum=1, maximum=8) == 1


def test_a_queue_is_its_own_list_and_three_priority_lists() -> None:
    assert queue_lists("chorus") == ["chorus", "chorus\x06\x163", "chorus\x06\x166", "chorus\x06\x169"]
