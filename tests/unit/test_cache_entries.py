import pytest
import torch

from chorus.cache.entries import load_run, read_entry, run_metadata, save_run, write_entry
from chorus.cache.layout import EntryUnavailable, object_key
from chorus.engine.capture import CapturedRun
from chorus.storage.local import LocalStore
from tests.fixtures.cache_runs import make_run


def round_trip(run: CapturedRun, path) -> CapturedRun:
    save_run(run, path / "entry.safetensors")
    return load_run(path / "entry.safetensors")


def test_save_load_round_trip(tmp_path):
    run = make_run()
    back = round_trip(run, tmp_path)
    assert run_metadata(back) == run_metadata(run)
    for step, latent in run.latents.items():
        assert torch.equal(back.latents[step], latent)
    for step, amap in run.attn_maps.items():
        assert torch.equal(back.attn_maps[step], amap)


def test_written_entry_size_is_what_is_stored_and_follows_the_captured_steps(tmp_path):
    store = LocalStore(tmp_path)
    full = write_entry(store, "tenant-a", "ns", make_run())
    fewer = write_entry(store, "tenant-a", "ns", make_run(latent_steps=(2,), map_steps=()))
    assert full.nbytes == (tmp_path / object_key(full.prefix)).stat().st_size
    assert full.steps_stored == [1, 2, 3, 4] and fewer.steps_stored == [2]
    # 3 latents of 3*8*8*8 fp16 and 2 maps of 64x7 fp16 less, header bytes aside.
    saved = 3 * 3 * 8 * 8 * 8 * 2 + 2 * 64 * 7 * 2
    assert saved <= full.nbytes - fewer.nbytes < saved + 1024
    assert full.prefix == f"cache/tenant-a/ns/{full.id}"
    assert torch.equal(read_entry(store, full.prefix).latents[3], make_run().latents[3])


def test_missing_or_corrupt_entries_are_unavailable(tmp_path):
    store = LocalStore(tmp_path)
    stored = write_entry(store, "tenant-a", "ns", make_run())
    store.put(object_key(stored.prefix), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(EntryUnavailable):
        read_entry(store, stored.prefix)
    store.delete(object_key(stored.prefix))
    with pytest.raises(EntryUnavailable):
        read_entry(store, stored.prefix)


def test_a_run_without_latents_is_refused(tmp_path):
    with pytest.raises(ValueError):
        write_entry(LocalStore(tmp_path), "tenant-a", "ns", make_run(latent_steps=()))
