"""Segments in S3 (``ARCHIVE_URL=s3://bucket/prefix``).

The archive and its readers are synchronous (they run on the ledger's threads), so this
store uses botocore's synchronous client (aiobotocore's own dependency) rather than an
event loop per call. The endpoint comes from ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` (moto's server in the tests), the credentials and region from the
standard AWS variables. A put is one ``PutObject`` (atomic: readers see the old object
or the new one); a ranged read is ``GetObject`` with ``Range``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from adapters.archive.stores import SegmentMissing
from ledger.errors import StoreError

TIMEOUT_SECONDS = 30


class S3Store:
    """Segments as objects under ``prefix`` in ``bucket``."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    @classmethod
    def from_url(cls, url: str, env: Mapping[str, str] | None = None) -> S3Store:
        env = os.environ if env is None else env
        parts = urlsplit(url)
        session = botocore.session.get_session()
        client = session.create_client(
            "s3",
            region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
            config=Config(connect_timeout=TIMEOUT_SECONDS, read_timeout=TIMEOUT_SECONDS,
                          retries={"max_attempts": 3}),
        )
        return cls(parts.netloc, parts.path, client)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def put(self, name: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)
        except (BotoCoreError, ClientError) as error:
            raise StoreError(f"S3: {error}") from error

    def _get(self, name: str, **extra: str) -> bytes:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._key(name), **extra)
            body = answer["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise SegmentMissing(f"segment {name} is not in {self.describe()}") from None
            raise StoreError(f"S3: {error}") from error
        except BotoCoreError as error:
            raise StoreError(f"S3: {error}") from error

    def get(self, name: str) -> bytes:
        return self._get(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        return self._get(name, Range=f"bytes={offset}-{offset + length - 1}")

    def close(self) -> None:
        self._client.close()
