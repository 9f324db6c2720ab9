"""Where media bytes live: a local directory by default, any S3-compatible store when configured.

The interface is three calls (``get``, ``put``, ``delete``) on flat keys such as
``originals/<id>`` or ``renditions/<id>/640.webp``. Configuration (read once by the app factory):

- ``SHOPGRAPH_MEDIA_DIR``: the local directory (default: ``<tmp>/shopgraph-media/<database name>``,
  so stacks on different databases never share files);
- ``SHOPGRAPH_MEDIA_S3_BUCKET`` (with optional ``SHOPGRAPH_MEDIA_S3_ENDPOINT`` for MinIO, R2, …,
  ``SHOPGRAPH_MEDIA_S3_PREFIX``, and boto3's usual credentials/region environment): S3 instead.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import make_url

KEY_RE = re.compile(r"^[a-z]+(/[A-Za-z0-9._-]+)+$")


class Storage(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def delete(self, key: str) -> None: ...


def _checked(key: str) -> str:
    if not KEY_RE.match(key) or ".." in key:
        raise ValueError(f"bad storage key {key!r}")
    return key


class LocalStorage:
    """Files under one directory; a write is a rename, so a reader never sees half a file."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)

        def read() -> bytes | None:
            try:
                return path.read_bytes()
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(read)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".tmp-") as tmp:
                tmp.write(data)
            os.replace(tmp.name, path)

        await asyncio.to_thread(write)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(lambda: path.unlink(missing_ok=True))


class S3Storage:
    """Any S3-compatible store through boto3 (run in threads: boto3 is synchronous)."""

    name = "s3"

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, client: Any = None) -> None:
        import boto3  # only when configured

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url or None)

    async def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        def read() -> bytes | None:
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + _checked(key))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            body: bytes = response["Body"].read()
            return body

        return await asyncio.to_thread(read)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=self.prefix + _checked(key), Body=data, ContentType=content_type
            )
        )

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(lambda: self.client.delete_object(Bucket=self.bucket, Key=self.prefix + _checked(key)))


def storage_from_env(database_url: str, env: dict[str, str] | None = None) -> Storage:
    values = dict(os.environ) if env is None else env
    bucket = values.get("SHOPGRAPH_MEDIA_S3_BUCKET", "")
    if bucket:
        return S3Storage(
            bucket,
            prefix=values.get("SHOPGRAPH_MEDIA_S3_PREFIX", ""),
            endpoint_url=values.get("SHOPGRAPH_MEDIA_S3_ENDPOINT") or None,
        )
    root = values.get("SHOPGRAPH_MEDIA_DIR", "")
    if not root:
        database = make_url(database_url).database or "shopgraph" if database_url else "shopgraph"
        root = str(Path(tempfile.gettempdir()) / "shopgraph-media" / re.sub(r"[^A-Za-z0-9_-]", "_", database))
    return LocalStorage(Path(root))
