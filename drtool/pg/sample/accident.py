"""The demo's application and its accident, on the sample OmniCRM database: a user's day of
CRM work (new contacts, updated ones, interactions), then a mistaken DELETE."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

from drtool.pg.conn import Target, connect


@dataclass(frozen=True)
class Accident:
    before: datetime  # a moment between the day's work and the DELETE
    deleted: int
    contacts_before: int
    contacts_after: int


def _now(conn: object) -> datetime:
    row = conn.execute("select clock_timestamp()").fetchone()  # type: ignore[attr-defined]
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def day_of_work(target: Target) -> int:
    """New contacts and interactions for the first user, and updates; rows written."""
    with connect(target, "the demo's application writes") as conn:
        with conn.transaction():
            user = conn.execute("select user_id from public.contacts limit 1").fetchone()
            assert user is not None
            new = conn.execute(
                "insert into public.contacts (id, user_id, first_name, last_name, email,"
                " lifecycle_stage) select gen_random_uuid(), %s, 'New', 'Lead ' || g,"
                " 'lead' || g || '@example.org', 'lead' from generate_series(1, 25) g",
                (user[0],),
            ).rowcount
        with conn.transaction():
            changed = conn.execute(
                "update public.contacts set lifecycle_stage = 'customer', updated_at = now()"
                " where id in (select id from public.contacts order by id limit 40)"
            ).rowcount
        return new + changed


def delete_by_mistake(target: Target, pause_seconds: float = 1.5) -> Accident:
    """``DELETE FROM public.contacts WHERE lifecycle_stage = 'customer'`` (meant: one row)."""
    with connect(target, "the demo's accident") as conn:
        count = sql.SQL("select count(*) from {}").format(sql.Identifier("public", "contacts"))
        row = conn.execute(count).fetchone()
        total = int(row[0]) if row else 0  # type: ignore[call-overload]
        time.sleep(pause_seconds)
        before = _now(conn)
        time.sleep(pause_seconds)
        deleted = conn.execute(
            "delete from public.contacts where lifecycle_stage = 'customer'"
        ).rowcount
        row = conn.execute(count).fetchone()
        after = int(row[0]) if row else 0  # type: ignore[call-overload]
    return Accident(before, deleted, total, after)


def count_contacts(target: Target) -> int:
    with connect(target, "counting contacts") as conn:
        row = conn.execute("select count(*) from public.contacts").fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]
