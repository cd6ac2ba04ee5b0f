import threading
import uuid

import pytest

from chorus.cache.entries import write_entry
from chorus.cache.index import EntryRef
from chorus.cache.layout import EntryUnavailable, StoredEntry, object_key
from chorus.cache.local import EntryFetcher, LocalEntryCache
from chorus.storage.local import LocalStore
from tests.fixtures.cache_runs import make_run


def ref(stored: StoredEntry) -> EntryRef:
    return EntryRef(stored.id, "d", "ns", "p", 0, stored.prefix, stored.nbytes, None)


def test_lru_is_bounded_by_bytes_and_keeps_the_recently_used():
    run = make_run()
    cache = LocalEntryCache(max_bytes=3 * run.nbytes)
    ids = [uuid.uuid4() for _ in range(4)]
    for entry_id in ids[:3]:
        cache.put(entry_id, make_run())
    assert cache.get(ids[0]) is not None  # ids[0] is now the most recently used
    cache.put(ids[3], make_run())
    assert len(cache) == 3 and cache.nbytes == 3 * run.nbytes
    assert ids[1] not in cache and all(i in cache for i in (ids[0], ids[2], ids[3]))


def test_an_entry_larger_than_the_bound_is_not_kept():
    run = make_run()
    cache = LocalEntryCache(max_bytes=run.nbytes - 1)
    cache.put(uuid.uuid4(), run)
    assert len(cache) == 0


class CountingStore(LocalStore):
    """A real local store that counts reads and can hold them until released."""

    def __init__(self, root):
        super().__init__(root)
        self.gets = 0
        self.release = threading.Event()
        self.release.set()

    def get_file(self, key: str, path) -> None:
        self.gets += 1
        self.release.wait(10)
        super().get_file(key, path)


@pytest.fixture
def fetcher(tmp_path):
    store = CountingStore(tmp_path)
    fetcher = EntryFetcher(store, LocalEntryCache(max_bytes=10 * make_run().nbytes))
    yield fetcher
    fetcher.close()


def test_prefetch_shares_one_read_and_later_fetches_are_local(fetcher):
    store = fetcher.store
    stored = write_entry(store, "d", "ns", make_run(seed=7))
    store.release.clear()
    first, second = fetcher.prefetch(ref(stored)), fetcher.prefetch(ref(stored))
    assert first is second and not first.done()  # a concurrent request waits for the same read
    store.release.set()
    assert first.result(10).seed == 7
    store.delete(object_key(stored.prefix))  # from now on only the local copy exists
    assert fetcher.fetch(ref(stored)).seed == 7
    assert store.gets == 1


def test_a_failed_fetch_raises_unavailable_and_is_not_remembered(fetcher):
    store = fetcher.store
    stored = write_entry(store, "d", "ns", make_run())
    data = (store.root / object_key(stored.prefix)).read_bytes()
    store.delete(object_key(stored.prefix))
    with pytest.raises(EntryUnavailable):
        fetcher.prefetch(ref(stored)).result(10)
    store.put(object_key(stored.prefix), data)
    assert fetcher.fetch(ref(stored)).latents.keys() == {1, 2, 3, 4}
