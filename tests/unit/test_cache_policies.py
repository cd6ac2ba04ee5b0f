import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

from chorus.cache.eviction import EntryStats, LCBFUPolicy, LRUPolicy, choose_victims

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def stats(*, age_s: float, hits: int = 0, saved: float = 0.0, last_hit_ago_s: float | None = None, nbytes: int = 100):
    return EntryStats(
        id=uuid.uuid4(),
        bytes=nbytes,
        hits=hits,
        steps_saved_total=saved,
        created_at=NOW - timedelta(seconds=age_s),
        last_hit_at=None if last_hit_ago_s is None else NOW - timedelta(seconds=last_hit_ago_s),
    )


def test_lcbfu_scores_benefit_times_frequency():
    policy = LCBFUPolicy(new_entry_steps=1.0, half_life_s=3600)
    old = 10 * 24 * 3600  # the new-entry credit has faded away
    assert policy.score(stats(age_s=old, hits=3, saved=6.0), NOW) > policy.score(
        stats(age_s=old, hits=5, saved=5.0), NOW
    )
    assert policy.score(stats(age_s=old, hits=2, saved=6.0), NOW) > policy.score(
        stats(age_s=old, hits=1, saved=3.0), NOW
    )


def test_lcbfu_never_hit_entries_fade_with_age_below_any_useful_entry():
    policy = LCBFUPolicy(new_entry_steps=1.0, half_life_s=3600)
    fresh, stale = stats(age_s=60), stats(age_s=48 * 3600)
    useful = stats(age_s=48 * 3600, hits=1, saved=1.0)
    assert policy.score(fresh, NOW) > policy.score(stale, NOW)
    assert policy.score(useful, NOW) > policy.score(stale, NOW)
    assert policy.score(fresh, NOW) <= 1.0


def test_lru_orders_by_last_use_then_admission():
    policy = LRUPolicy()
    recently_hit = stats(age_s=5000, hits=1, saved=1.0, last_hit_ago_s=10)
    never_hit_newer = stats(age_s=100)
    assert policy.score(recently_hit, NOW) > policy.score(never_hit_newer, NOW)
    assert policy.score(never_hit_newer, NOW) > policy.score(stats(age_s=200), NOW)


def test_choose_victims_evicts_the_lowest_scores_until_the_budget_fits():
    policy = LCBFUPolicy()
    day = 24 * 3600
    keep = stats(age_s=day, hits=4, saved=8.0, nbytes=300)
    stale_big = stats(age_s=3 * day, nbytes=250)
    stale_small = stats(age_s=2 * day, nbytes=100)
    fresh = stats(age_s=10, nbytes=100)
    entries = [keep, fresh, stale_small, stale_big]  # 750 bytes
    assert choose_victims(entries, 750, policy, NOW) == []
    # Oldest never-hit entry first; it alone frees enough for 500.
    assert choose_victims(entries, 500, policy, NOW) == [stale_big.id]
    assert choose_victims(entries, 450, policy, NOW) == [stale_big.id, stale_small.id]
    assert choose_victims(entries, 0, policy, NOW) == [stale_big.id, stale_small.id, fresh.id, keep.id]


def test_the_index_and_eviction_import_without_torch():
    """A sweep job or the API can use them without the model stack."""
    code = (
        "import sys, chorus.cache.index, chorus.cache.eviction, chorus.cache.cli, chorus.namespace; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
