"""Replication: copy complete items to replica storages, bytes unchanged, verify them there
and write each item's manifest last (SPEC "Replication"; docs/replication.md)."""
