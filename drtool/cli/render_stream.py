"""Rendering of ``stream run|status|drop`` results."""

from __future__ import annotations

from drtool.cli.render import emit, emit_json, human_size
from drtool.services.jobs.health import format_age
from drtool.services.stream.drop import StreamDropResult
from drtool.services.stream.run import StreamRunResult
from drtool.services.stream.status import StreamStatus


def run_result(result: StreamRunResult, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "ok": True,
                "exit_code": result.exit_code,
                "slot": result.slot,
                "chain": result.generation,
                "segments": result.segments,
                "changes": result.changes,
                "base_backups": result.base_backups,
                "warnings": result.warnings,
            }
        )
        return
    emit(result.summary())


def status_doc(s: StreamStatus) -> dict[str, object]:
    slot = s.slot_state
    newest = s.newest
    state = s.state
    return {
        "ok": not s.breaches,
        "exit_code": 4 if s.breaches else 0,
        "slot": s.slot,
        "enabled": s.enabled,
        "slot_exists": s.slot_exists,
        "slot_error": s.slot_error,
        "slot_active": slot.active if slot else None,
        "slot_wal_status": slot.wal_status if slot else None,
        "slot_retained_bytes": s.retained_bytes,
        "slot_confirmed_lsn": None
        if slot is None
        else f"{slot.confirmed_lsn >> 32:X}/{slot.confirmed_lsn & 0xFFFFFFFF:X}",
        "max_slot_lag_bytes": s.max_slot_lag,
        "running": s.running,
        "chain": state.generation if state else (newest.generation if newest else None),
        "newest_segment": None
        if newest is None
        else {
            "id": newest.id,
            "sequence": newest.sequence,
            "to_lsn": newest.to_lsn,
            "last_commit_at": newest.last_commit_at.isoformat() if newest.last_commit_at else None,
            "age_seconds": round(s.newest_age_seconds or 0.0, 3),
        },
        "stored_through": s.stored_through.isoformat() if s.stored_through else None,
        "rpo_seconds": round(s.rpo_seconds, 3) if s.rpo_seconds is not None else None,
        "changes_per_second": state.changes_per_second if state else None,
        "not_replayable": state.not_replayable if state else [],
        "not_captured": state.not_captured if state else [],
        "breaches": [text for _, text in s.breaches],
    }


def status_lines(s: StreamStatus) -> list[str]:
    lines = [
        f"stream {s.slot}: {'enabled' if s.enabled else 'not enabled'}"
        + (", running" if s.running else ", not running")
    ]
    if s.slot_error is not None:
        lines.append(f"  slot: unknown ({s.slot_error})")
    elif s.slot_state is None:
        lines.append("  slot: none (no WAL held)")
    else:
        lines.append(
            f"  slot: holds {human_size(s.slot_state.retained_bytes)} of WAL "
            f"(limit {human_size(s.max_slot_lag)}), "
            f"{'in use' if s.slot_state.active else 'idle'}"
        )
    if s.newest is not None:
        age = s.newest_age_seconds or 0.0
        lines.append(
            f"  newest segment: #{s.newest.sequence} {s.newest.id} ({format_age(age)} old), "
            f"changes up to {s.newest.to_lsn}"
        )
    else:
        lines.append("  newest segment: none")
    if s.stored_through is not None and s.rpo_seconds is not None:
        lines.append(
            f"  every change committed before {s.stored_through.isoformat(timespec='seconds')} "
            f"is stored (RPO {format_age(s.rpo_seconds)})"
        )
    if s.state is not None and s.state.not_replayable:
        lines.append(
            "  INSERT/TRUNCATE only (no replica identity): " + ", ".join(s.state.not_replayable)
        )
    if s.state is not None and s.state.not_captured:
        lines.append("  not captured (not owned by the role): " + ", ".join(s.state.not_captured))
    lines += [f"  BREACH: {text}" for _, text in s.breaches]
    return lines


def status_result(s: StreamStatus, as_json: bool) -> None:
    if as_json:
        emit_json(status_doc(s))
        return
    emit("\n".join(status_lines(s)))


def drop_result(result: StreamDropResult, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "ok": True,
                "exit_code": result.exit_code,
                "slot": result.slot,
                "dropped_slot": result.dropped_slot,
                "retained_bytes": result.retained_bytes,
                "dropped_publications": result.dropped_publications,
            }
        )
        return
    if not result.dropped_slot:
        emit(f"no replication slot {result.slot}; nothing held")
        return
    held = human_size(result.retained_bytes or 0)
    emit(f"dropped replication slot {result.slot} (it held {held} of WAL)")
