"""The scheduler's HTTP endpoint on ``metrics.listen``: ``/metrics`` (Prometheus text) and
``/healthz`` (200 while healthy, 503 with a JSON reason)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from drtool.errors import OperationError, UsageError
from drtool.log import get_logger

log = get_logger("scheduler")

# (status code, JSON body); (Prometheus text)
HealthFn = Callable[[], tuple[int, dict[str, object]]]
MetricsFn = Callable[[], bytes]
CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"metrics.listen {listen!r}: expected HOST:PORT (e.g. 0.0.0.0:9187)")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - a container's port


def serve(listen: str, metrics: MetricsFn, health: HealthFn) -> ThreadingHTTPServer:
    """Bind and serve on a daemon thread; returns the server (``server_address`` is bound)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_METRICS, metrics())
            elif path == "/healthz":
                code, doc = health()
                self._send(code, "application/json", json.dumps(doc).encode("utf-8") + b"\n")
            else:
                self._send(404, "text/plain", b"not found: try /metrics or /healthz\n")

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http: " + format, *args)

    host, port = parse_listen(listen)
    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise OperationError(
            f"cannot listen on metrics.listen {listen}: {exc.strerror}",
            hint="choose a free port in metrics.listen (or DRTOOL_METRICS__LISTEN)",
        ) from exc
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="metrics-http")
    thread.start()
    return server
