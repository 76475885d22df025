"""Logging set-up (JSON or human lines on stderr) and the redaction filter that keeps
secrets out of every line."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "drtool"

# Patterns that look like secrets whatever their origin: DSN passwords, age identities, AWS keys.
_DSN_PASSWORD = re.compile(
    r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)(?=@)", re.I
)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'[^']*'|\S+)", re.I)
_AGE_SECRET = re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]+", re.I)
REDACTED = "***"


class Redactor:
    """Replaces registered secret strings and secret-shaped text with ``***``."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _DSN_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
        text = _KV_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
        return _AGE_SECRET.sub("AGE-SECRET-KEY-1" + REDACTED, text)


REDACTOR = Redactor()


def redact(text: str) -> str:
    return REDACTOR.redact(text)


class RedactingFilter(logging.Filter):
    """Renders each record's message through the redactor before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, job, item id, stage, message."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for field in ("job", "item_id", "stage", "ok", "seconds", "exit_code", "event"):
            value = getattr(record, field, None)
            if value is not None:
                doc[field] = value
        if record.exc_info:
            doc["traceback"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, default=str)


class TerminalAwareHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """On a terminal, a log line first wipes a pending progress line (which has no newline)."""

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream.isatty():
            self.stream.write("\r\x1b[2K")
        super().emit(record)


def get_logger(name: str | None = None) -> logging.Logger:
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


def setup_logging(level: int = logging.INFO, fmt: str = "text") -> None:
    """Configure the drtool logger once: stderr, redacted, text or JSON lines."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = TerminalAwareHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("drtool: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
