"""Objects streamed to and from the store from files, and copied within it: S3 (moto over real HTTP, multipart
above 8 MB) and a local folder give back the same bytes, and a missing key is ObjectNotFound."""

import os
import secrets

import pytest

from chorus.storage import ObjectNotFound
from chorus.storage.local import LocalStore
from chorus.storage.s3 import S3Store

S3_BUCKET = "chorus-test"


@pytest.fixture(params=["s3", "local"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_endpoint")
    s3 = S3Store(S3_BUCKET, prefix=f"stream-{secrets.token_hex(4)}", endpoint_url=endpoint)
    try:
        s3.client.create_bucket(Bucket=S3_BUCKET)
    except s3.client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return s3


def test_a_large_file_round_trips_through_the_store(store, tmp_path):
    source = tmp_path / "entry.bin"
    source.write_bytes(os.urandom(20 * 2**20))  # above boto3's 8 MB multipart threshold
    store.put_file("cache/x/entry.safetensors", source)
    back = tmp_path / "back.bin"
    store.get_file("cache/x/entry.safetensors", back)
    assert back.read_bytes() == source.read_bytes()
    with pytest.raises(ObjectNotFound):
        store.get_file("cache/x/missing", tmp_path / "missing.bin")


def test_copy_gives_the_same_bytes_under_the_new_key_and_reports_missing_sources(store):
    data = os.urandom(300_000)
    store.put("videos/t/source.mp4", data, content_type="video/mp4")
    assert store.copy("videos/t/source.mp4", "videos/t/repeat.mp4") == len(data)
    assert store.get("videos/t/repeat.mp4") == data
    store.delete("videos/t/source.mp4")
    assert store.get("videos/t/repeat.mp4") == data  # a copy, not a link
    with pytest.raises(ObjectNotFound):
        store.copy("videos/t/source.mp4", "videos/t/again.mp4")
