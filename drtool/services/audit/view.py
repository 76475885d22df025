"""``audit``: the trail newest first (optionally since a duration, or naming a user or item),
and ``audit --verify``: the hash chain walked in storage order, every break named."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from drtool.catalog.records.audit import (
    AUDIT_HEAD_KEY,
    AUDIT_PREFIX,
    PRIMARY_TRAIL,
    AuditRecord,
    Head,
    is_record_key,
    parse_audit_record,
    read_head,
    record_key,
    sha256_hex,
)
from drtool.errors import EXIT_INTEGRITY, EXIT_OK, DrtoolError, OperationError
from drtool.services.context import Context

# How long a verify waits for a writer that has moved the head but not stored its record yet.
IN_FLIGHT_GRACE_SECONDS = 1.0


@dataclass(frozen=True)
class AuditListResult:
    records: list[AuditRecord]
    exit_code: int = EXIT_OK


@dataclass(frozen=True)
class AuditVerifyResult:
    ok: bool
    records: int
    newest_id: str | None
    problems: list[str]

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_INTEGRITY


def _record_keys(ctx: Context, since: datetime | None = None) -> list[str]:
    """Every record key in order; with ``since``, only those of its month and later (records
    are filed by month, so `audit --since` does not read the whole trail)."""
    if since is None:
        prefixes = [AUDIT_PREFIX]
    else:
        now, month = ctx.clock(), since.replace(day=1)
        prefixes = []
        while (month.year, month.month) <= (now.year, now.month):
            prefixes.append(f"{AUDIT_PREFIX}{month:%Y}/{month:%m}/")
            month = (month + timedelta(days=32)).replace(day=1)
    keys = (i.key for p in prefixes for i in ctx.storage.list(p))
    return sorted(k for k in keys if is_record_key(k))


def list_audit(
    ctx: Context,
    *,
    since: timedelta | None = None,
    user: str | None = None,
    item: str | None = None,
) -> AuditListResult:
    """Records newest first; ``user`` keeps those naming ``user:<id>``, ``item`` those naming
    that item (``backup:<id>``, or the bare id)."""
    cutoff = ctx.clock() - since if since is not None else None
    records: list[AuditRecord] = []
    for key in _record_keys(ctx, cutoff):
        record = parse_audit_record(ctx.storage.get_bytes(key), key)
        if cutoff is not None and record.at < cutoff:
            continue
        if user is not None and f"user:{user}" not in record.items:
            continue
        if item is not None and not any(i == item or i.endswith(f":{item}") for i in record.items):
            continue
        records.append(record)
    records.sort(key=lambda r: r.id, reverse=True)  # ids follow the chain within a trail
    return AuditListResult(records)


@dataclass
class _Chain:
    """Where the walk of one trail stands: its last record's key, seq and hash."""

    key: str | None = None
    seq: int = 0
    sha: str | None = None


def verify_audit(ctx: Context) -> AuditVerifyResult:
    """Walk the records in key (time) order: each must sit at its own key, carry the next
    sequence number and the SHA-256 of the previous record's bytes; the newest must be the
    one ``audit/head.json`` names. A removed record is a gap, an edited one a hash that no
    longer matches, a reordered one a record at another's key or out of sequence.

    A replica holds the primary's trail (copied by `replicate`) and, if operations ran with
    ``--from`` it, its own: each record names its ``trail``, and each trail is walked alone."""
    problems: list[str] = []
    chains: dict[str, _Chain] = {}
    newest: AuditRecord | None = None
    keys = _record_keys(ctx)
    for key in keys:
        data = ctx.storage.get_bytes(key)
        try:
            record = parse_audit_record(data, key)
        except DrtoolError as exc:
            problems.append(f"{key}: unreadable, edited ({exc.message})")
            continue
        chain = chains.setdefault(record.trail, _Chain())
        problems += _check_record(key, record, chain)
        chain.key, chain.seq, chain.sha = key, record.seq, sha256_hex(data)
        newest = record
    problems += _check_head(ctx, chains)
    return AuditVerifyResult(not problems, len(keys), newest.id if newest else None, problems)


def _check_record(key: str, record: AuditRecord, chain: _Chain) -> list[str]:
    problems: list[str] = []
    try:
        own_key: str | None = record_key(record.id)
    except OperationError:
        own_key = None
    if own_key != key:
        problems.append(
            f"{key}: holds record {record.id} (seq {record.seq}), which belongs at "
            f"{own_key}: moved or reordered"
        )
    expected = chain.seq + 1
    if record.seq > expected:
        missing = (
            f"seq {expected}"
            if record.seq == expected + 1
            else (f"seq {expected}..{record.seq - 1}")
        )
        after = f" after {chain.key}" if chain.key else " at the start of the trail"
        problems.append(f"{key} (seq {record.seq}): record {missing} removed{after}")
    elif record.seq < expected:
        problems.append(
            f"{key} (seq {record.seq}): out of order, stored after {chain.key} "
            f"(seq {chain.seq}): reordered"
        )
    elif record.prev_sha256 != chain.sha:
        what = f"{chain.key} was edited" if chain.key else "the first record's link was edited"
        problems.append(
            f"{key} (seq {record.seq}): prev_sha256 does not match the previous record: {what}"
        )
    return problems


def _head_record(head: Head) -> AuditRecord | None:
    try:
        return parse_audit_record(head.record.encode("utf-8"), AUDIT_HEAD_KEY)
    except DrtoolError:
        return None


def _check_head(ctx: Context, chains: dict[str, _Chain]) -> list[str]:
    try:
        head, _etag = read_head(ctx.storage)
    except DrtoolError as exc:
        return [f"{AUDIT_HEAD_KEY}: unreadable ({exc.message})"]
    if head is None:
        if not chains.get(PRIMARY_TRAIL) or ctx.source is not None:
            # A replica holds the records `replicate` copied, not the primary's head.
            return []
        return [f"{AUDIT_HEAD_KEY} is missing: the newest records cannot be checked"]
    in_head = _head_record(head)
    if in_head is None:
        return [f"{AUDIT_HEAD_KEY}: the record it holds is unreadable (edited)"]
    last = chains.get(in_head.trail, _Chain())
    if head.seq == last.seq + 1 and in_head.prev_sha256 == last.sha:
        # The head moved to a record that is not stored: a writer between its two steps (give
        # it a moment), one that died there, or a removed newest record. The head holds the
        # record's bytes and the next append stores them again.
        time.sleep(IN_FLIGHT_GRACE_SECONDS)
        if ctx.storage.exists(head.key):
            return []
        return [
            f"{head.key} (seq {head.seq}), the newest record, is not stored: removed, or its "
            "writer died before storing it (the head keeps a copy; the next audited "
            "operation stores it again)"
        ]
    if last.key is None or head.seq > last.seq:
        return [
            f"{head.key} (seq {head.seq}), the newest record named by {AUDIT_HEAD_KEY}, is "
            f"missing: removed"
        ]
    if head.key == last.key and head.sha256 != last.sha:
        return [f"{last.key} (seq {last.seq}): the newest record was edited"]
    if head.key != last.key:
        return [
            f"{last.key} (seq {last.seq}) is newer than the head {head.key} (seq {head.seq}): "
            "not appended through the chain"
        ]
    return []
