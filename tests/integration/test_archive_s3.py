"""Segments in S3 (ADR 110), against moto's server on 127.0.0.1: the store's contract
(put, whole and ranged reads, a missing segment), and a whole archive on SQLite whose
archived jobs read back from S3."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

from adapters.archive.s3 import S3Store
from adapters.archive.stores import DirectoryStore, SegmentMissing, SegmentStore
from adapters.service.archive_reader import segment_store
from tests.integration.test_archive import archive, seeded, state
from tests.support.projection_env import Backend, make_backend

BUCKET = "ledger-archive"


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on moto, the standard AWS variables pointing at it."""
    from tests.support.sqs import CREDENTIALS, REGION

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    client: Any = botocore.session.get_session().create_client(
        "s3", region_name=REGION, endpoint_url=moto_endpoint
    )
    try:
        client.create_bucket(Bucket=BUCKET)
    except ClientError as error:  # a second test of the session: the bucket is there
        if "BucketAlreadyOwnedByYou" not in str(error):
            raise
    finally:
        client.close()
    return f"s3://{BUCKET}/archive"


@pytest.fixture(params=["directory", "s3"])
def segments(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SegmentStore]:
    store: SegmentStore = (
        DirectoryStore(tmp_path / "segments") if request.param == "directory"
        else S3Store.from_url(str(request.getfixturevalue("s3")) + "/contract")
    )
    yield store
    store.close()


def test_the_segment_store_contract(segments: SegmentStore) -> None:
    segments.put("segment-00000001.jlseg", b"0123456789")
    segments.put("segment-00000001.jlseg", b"abcdefghij")  # an unrecorded one is replaced
    assert segments.get("segment-00000001.jlseg") == b"abcdefghij"
    assert segments.get_range("segment-00000001.jlseg", 3, 4) == b"defg"
    with pytest.raises(SegmentMissing):
        segments.get("segment-00000002.jlseg")


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path, s3: str) -> Iterator[Backend]:
    request.param = "sqlite"
    made = make_backend(request, tmp_path)
    made.settings = replace(made.settings, archive_url=s3)
    yield made
    made.close()


def test_an_archive_in_s3_reads_back(backend: Backend) -> None:
    workload = seeded(backend)
    before = state(backend, workload)
    report = archive(backend, workload)
    assert report.jobs > 0
    assert not (backend.settings.ledger_data_dir / "archive").exists()
    store = segment_store(backend.settings)
    assert store.get(report.segments[0].name)[-8:] == b"JLSEG01\n"
    store.close()
    assert state(backend, workload) == before
