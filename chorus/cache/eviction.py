"""Keeping each cache domain under its byte budget and its entries under their TTL.

Expired entries go first, then the lowest-scoring ones by a policy until the domain
fits. Rows are deleted (and committed) before their objects: a lookup can no longer
return an evicted entry, and a reader that got the row just before finds the objects
gone, gets EntryUnavailable and computes in full.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, Engine, delete, func, select

from chorus.cache.index import Clock, utcnow
from chorus.cache.layout import delete_objects
from chorus.db.models import CacheEntry
from chorus.storage import ObjectStore, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntryStats:
    """The columns a policy scores an entry by."""

    id: uuid.UUID
    bytes: int
    hits: int
    steps_saved_total: float
    created_at: datetime
    last_hit_at: datetime | None


class EvictionPolicy(Protocol):
    def score(self, entry: EntryStats, now: datetime) -> float:
        """Higher is worth keeping; the lowest scores are evicted first."""
        ...


@dataclass(frozen=True)
class LCBFUPolicy:
    """NIRVANA's least computationally beneficial and frequently used: benefit per hit x hits.

    That product is the steps the entry saved so far. A new entry has had no chance to
    be hit yet, so it gets a credit of ``new_entry_steps`` that halves every
    ``half_life_s``: fresh entries survive a while, entries nobody reused fade to zero
    and go before any entry that saved work, the oldest first.
    """

    new_entry_steps: float = 1.0
    half_life_s: float = 3600.0

    def score(self, entry: EntryStats, now: datetime) -> float:
        age_s = max(0.0, (now - entry.created_at).total_seconds())
        return entry.steps_saved_total + self.new_entry_steps * 0.5 ** (age_s / self.half_life_s)


@dataclass(frozen=True)
class LRUPolicy:
    """Least recently used (hit, or admitted if never hit): the baseline to compare LCBFU with."""

    def score(self, entry: EntryStats, now: datetime) -> float:
        return (entry.last_hit_at or entry.created_at).timestamp()


def choose_victims(
    entries: list[EntryStats], budget_bytes: int, policy: EvictionPolicy, now: datetime
) -> list[uuid.UUID]:
    """The lowest-scoring entries whose removal brings the total down to the budget."""
    excess = sum(e.bytes for e in entries) - budget_bytes
    victims = []
    for entry in sorted(entries, key=lambda e: (policy.score(e, now), e.created_at)):
        if excess <= 0:
            break
        victims.append(entry.id)
        excess -= entry.bytes
    return victims


def eviction_lock_key(domain: str):
    """The advisory lock (a SQL expression) that serialises evictors of one domain."""
    return func.hashtextextended(f"chorus-cache-evict:{domain}", 0)


@dataclass
class EvictionReport:
    expired: int = 0
    evicted: int = 0
    freed_bytes: int = 0
    skipped: bool = False  # another process held the domain's eviction lock
    orphaned_prefixes: list[str] = field(default_factory=list)  # rows gone, objects could not be deleted


class Evictor:
    def __init__(
        self,
        engine: Engine,
        store: ObjectStore,
        budget_bytes: int,
        policy: EvictionPolicy | None = None,
        clock: Clock = utcnow,
    ):
        self.engine = engine
        self.store = store
        self.budget_bytes = budget_bytes
        self.policy = policy or LCBFUPolicy()
        self.clock = clock

    def enforce(self, domain: str) -> EvictionReport:
        """Drop the domain's expired entries, then evict until it fits its budget."""
        report = EvictionReport()
        now = self.clock()
        with self.engine.begin() as conn:
            # One evictor per domain at a time; the others skip instead of evicting twice.
            if not conn.scalar(select(func.pg_try_advisory_xact_lock(eviction_lock_key(domain)))):
                return EvictionReport(skipped=True)
            in_domain = CacheEntry.domain == domain
            expired = self._delete(conn, in_domain & (CacheEntry.expires_at <= now))
            report.expired = len(expired)
            evicted = []
            if (conn.scalar(select(func.sum(CacheEntry.bytes)).where(in_domain)) or 0) > self.budget_bytes:
                columns = [getattr(CacheEntry, name) for name in EntryStats.__dataclass_fields__]
                live = [EntryStats(**row._asdict()) for row in conn.execute(select(*columns).where(in_domain))]
                victims = choose_victims(live, self.budget_bytes, self.policy, now)
                evicted = self._delete(conn, CacheEntry.id.in_(victims))
            report.evicted = len(evicted)
        # Committed: no lookup returns these rows any more, so their objects can go.
        for prefix, nbytes in expired + evicted:
            report.freed_bytes += nbytes
            try:
                delete_objects(self.store, prefix)
            except StoreError:
                log.warning("cache objects under %s left behind: store delete failed", prefix, exc_info=True)
                report.orphaned_prefixes.append(prefix)
        return report

    def sweep(self) -> dict[str, EvictionReport]:
        """Enforce every domain: expiry must also happen in domains that see no new entries."""
        with self.engine.connect() as conn:
            domains = conn.scalars(select(CacheEntry.domain).distinct()).all()
        return {domain: self.enforce(domain) for domain in domains}

    @staticmethod
    def _delete(conn: Connection, where) -> list[tuple[str, int]]:
        rows = conn.execute(delete(CacheEntry).where(where).returning(CacheEntry.object_prefix, CacheEntry.bytes))
        return [(prefix, nbytes) for prefix, nbytes in rows]
