"""Reading the catalog's small JSON documents (manifests and every kind of record) one way:
JSON object -> version check -> pydantic model, anything malformed an IntegrityError naming the
field, a newer version a UsageError; and reading them from storage (absent -> None, unreadable
-> logged and skipped where a listing must go on)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from drtool.errors import IntegrityError, NotFoundInStorage, UsageError
from drtool.log import get_logger
from drtool.storage.base import Storage

T = TypeVar("T")
SUPPORTED_VERSIONS = (1,)

log = get_logger("catalog")


def document_bytes(model: BaseModel) -> bytes:
    """How every catalog document is stored: indented JSON, sorted keys, a final newline."""
    doc = model.model_dump(mode="json")
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def load_document(
    data: bytes,
    where: str,
    what: str,
    *,
    supported: tuple[int, ...] = SUPPORTED_VERSIONS,
    obj: str | None = None,
) -> dict[str, Any]:
    """The JSON object stored at ``where``; ``what`` names the document in messages."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{where}: {what} is not valid JSON", obj=obj) from exc
    if not isinstance(doc, dict):
        raise IntegrityError(f"{where}: {what} is not a JSON object", obj=obj)
    version = doc.get("version")
    if isinstance(version, int) and version > max(supported):
        raise UsageError(
            f"{where}: {what} version {version} was written by a newer drtool",
            hint="upgrade drtool to read it",
        )
    return doc


def validate(
    model: type[T] | TypeAdapter[T],
    doc: Mapping[str, Any],
    where: str,
    what: str,
    *,
    obj: str | None = None,
    lenient: bool = False,
) -> T:
    """``doc`` as ``model``; the first invalid field is named in the IntegrityError.

    ``lenient``: a reader that must go on (``status``) drops the top-level fields it cannot
    read, where the model has a default for them, rather than the whole document."""
    adapter = model if isinstance(model, TypeAdapter) else TypeAdapter(model)
    try:
        return adapter.validate_python(doc)
    except ValidationError as exc:
        if lenient:
            bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
            trimmed = {k: v for k, v in doc.items() if k not in bad}
            if len(trimmed) < len(doc):
                with contextlib.suppress(ValidationError):
                    return adapter.validate_python(trimmed)
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        loc = f"{field}: " if field else ""  # empty when the kind itself is missing
        raise IntegrityError(f"{where}: {what} is invalid ({loc}{first['msg']})", obj=obj) from exc


def parse_record(
    model: type[T] | TypeAdapter[T],
    data: bytes,
    where: str,
    what: str,
    *,
    supported: tuple[int, ...] = SUPPORTED_VERSIONS,
    defaults: Mapping[str, Any] | None = None,
    obj: str | None = None,
    lenient: bool = False,
) -> T:
    """Parse a stored document: ``defaults`` fill fields older writers left out."""
    doc = load_document(data, where, what, supported=supported, obj=obj)
    for name, value in (defaults or {}).items():
        doc.setdefault(name, value)
    return validate(model, doc, where, what, obj=obj, lenient=lenient)


def read_record(storage: Storage, key: str, parse: Callable[[bytes, str], T]) -> T | None:
    """The document at ``key``, or None if there is none (unreadable: the parser's error)."""
    try:
        data = storage.get_bytes(key)
    except NotFoundInStorage:
        return None
    return parse(data, key)


def readable(
    storage: Storage,
    keys: Iterable[str],
    parse: Callable[[bytes, str], T],
    *,
    on_unreadable: Callable[[str, str], None] | None = None,
) -> Iterator[T]:
    """The documents at ``keys``, lazily and in order: absent ones (deleted meanwhile) are
    passed over, unreadable ones logged and skipped (and reported to ``on_unreadable``)."""
    for key in keys:
        try:
            found = read_record(storage, key, parse)
        except (IntegrityError, UsageError) as exc:
            log.warning("skipping %s: %s", key, exc.message)
            if on_unreadable is not None:
                on_unreadable(key, exc.message)
            continue
        if found is not None:
            yield found
