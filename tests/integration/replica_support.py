"""Helpers for the replica tests: a replica bucket on moto configured under storage.replicas,
its keys, and the primary bucket emptied (a lost primary)."""

from __future__ import annotations

from typing import Any

from tests.fixtures.cli import Setup
from tests.fixtures.s3 import MotoServer

PREFIX = "prefix/"


def add_replica(setup: Setup, moto: MotoServer, bucket: str, name: str = "dr") -> None:
    """Configure ``bucket`` on the moto server as replica ``name`` (credentials: the same
    AWS_* variables as the primary)."""
    replica: dict[str, Any] = {
        "name": name,
        "url": f"s3://{bucket}/prefix",
        "endpoint_url": moto.endpoint_url,
        "region": moto.region,
    }
    storage = setup.doc["storage"]
    storage["replicas"] = [*storage.get("replicas", []), replica]
    setup.write()


def keys(moto: MotoServer, bucket: str) -> list[str]:
    found: list[str] = []
    for page in moto.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found += [obj["Key"] for obj in page.get("Contents", [])]
    return sorted(found)


def lose_everything(moto: MotoServer, bucket: str) -> None:
    """Delete every object (and version) in ``bucket``; the bucket itself stays, empty."""
    client = moto.client()
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            client.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
    assert keys(moto, bucket) == []
