"""Rendering of status results: the verdict, one line per fact, the breaches and each job's
last failure; or the JSON document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drtool.cli.render import emit, emit_json, human_size, to_jsonable, when
from drtool.services.jobs.health import StatusResult, format_age, format_elapsed

if TYPE_CHECKING:
    from drtool.services.stream.status import StreamStatus


def status_lines(result: StatusResult) -> list[str]:
    objectives = result.objectives
    lines = [f"status: {'ok' if result.ok else 'BREACHED'} (at {when(result.checked_at)})"]
    backup = result.last_backup
    if backup is None:
        lines.append("  last backup:  none")
    else:
        lines.append(
            f"  last backup:  {backup.id}, snapshot {when(backup.at)} "
            f"({format_age(backup.age_seconds)} ago), {human_size(backup.size)} stored"
        )
    exposure = result.rpo_exposure_seconds
    lines.append(
        f"  RPO exposure: {format_age(exposure) if exposure is not None else 'unbounded'} "
        f"(objective {objectives.rpo})"
    )
    verify = result.last_verify
    if verify is None:
        lines.append("  last verify:  never (run `drtool verify`)")
    else:
        how = "deep" if verify.deep else "stored bytes"
        outcome = "ok" if verify.ok else f"FAILED, {verify.problems} problem(s)"
        lines.append(
            f"  last verify:  {verify.kind} {verify.id} {outcome} ({how}) at {when(verify.at)}"
        )
    drill = result.last_drill
    if drill is None:
        lines.append("  last drill:   never (run `drtool rehearse`)")
    else:
        rto = format_elapsed(drill.rto_seconds) if drill.rto_seconds is not None else "-"
        lines.append(
            f"  last drill:   {drill.id} {drill.verdict or '?'}, RTO {rto} "
            f"(objective {objectives.rto}) at {when(drill.at)}"
        )
    if objectives.drill_max_age is not None:
        lines.append(f"  drills due:   every {objectives.drill_max_age} (objective drill_max_age)")
    lines += replica_lines(result)
    if result.stream is not None:
        lines += stream_lines(result.stream)
    if result.bundle is not None:
        drifted = result.bundle.drifted
        state = (
            "DRIFT: " + ", ".join(f"{e.kind} {e.name} {e.state}" for e in drifted)
            if drifted
            else f"{len(result.bundle.entries)} checked, unchanged"
        )
        lines.append(f"  bundle:       {state} (backup {result.bundle.backup_id})")
    failed = [run for run in result.jobs if run.last_failure_at is not None]
    if failed:
        lines.append("  last failures:")
        for run in failed:
            now = "" if run.last_ok else " (still failing)"
            lines.append(
                f"    {run.job:<12} {when(run.last_failure_at)} exit "
                f"{run.last_failure_exit_code}{now}: {run.last_failure_error}"
            )
    if result.breaches:
        lines.append("breaches:")
        lines += [f"  - {text}" for text in result.breaches]
    return lines


def replica_lines(result: StatusResult) -> list[str]:
    """One line per configured replica: its newest backup and lag, or why it is unreadable."""
    limit = result.objectives.replica_lag
    objective = f" (objective {limit})" if limit else ""
    lines = []
    for replica in result.replicas:
        head = f"  replica {replica.name}:"
        if replica.error is not None:
            lines.append(f"{head} UNREADABLE ({replica.storage}): {replica.error}")
            continue
        newest = (
            f"newest backup {replica.newest_id}, snapshot {when(replica.newest_at)}"
            if replica.newest_id and replica.newest_at
            else "no backup"
        )
        lag = format_age(replica.lag_seconds or 0.0)
        flag = "" if replica.ok else " BEHIND"
        lines.append(f"{head} {newest}; lag {lag}{objective}{flag}")
    return lines


def stream_lines(stream: StreamStatus) -> list[str]:
    """The change stream: running or not, stored through, the slot's WAL."""
    state = "running" if stream.running else "STOPPED" if stream.enabled else "not enabled"
    through = stream.stored_through
    stored = f", every change before {when(through)} stored" if through else ""
    retained = stream.retained_bytes
    slot = (
        f"slot holds {human_size(retained)} of WAL (limit {human_size(stream.max_slot_lag)})"
        if retained is not None
        else f"slot: {stream.slot_error}"
        if stream.slot_error
        else "no slot"
    )
    return [f"  stream:       {stream.slot} {state}{stored}; {slot}"]


def status_result(result: StatusResult, as_json: bool) -> None:
    if as_json:
        doc = to_jsonable(result)
        if result.stream is not None:
            from drtool.cli.render_stream import status_doc

            doc["stream"] = status_doc(result.stream)
        emit_json(doc)
        return
    emit("\n".join(status_lines(result)))
