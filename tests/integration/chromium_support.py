"""Headless Chromium for the HTML report tests: find it, dump a page's DOM after layout, take a
screenshot, and read a PNG's pixels (no imaging library: zlib and the PNG row filters)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_SECONDS = 120

# Appended to a copy of a page (never to the report itself): after layout, the size of every
# SVG chart and of each of its marks, written into the DOM for --dump-dom to carry out.
MEASURE_SCRIPT = """
<script>
(function () {
  var charts = [];
  document.querySelectorAll("svg").forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    var marks = {};
    var drawn = 0;
    svg.querySelectorAll("[data-mark]").forEach(function (m) {
      var k = m.getAttribute("data-mark");
      marks[k] = (marks[k] || 0) + 1;
      var r = m.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) { drawn += 1; }
    });
    charts.push({name: svg.getAttribute("data-chart"), width: box.width,
                 height: box.height, marks: marks, drawn: drawn});
  });
  var out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({charts: charts,
                                    scrollWidth: document.documentElement.scrollWidth,
                                    scrollHeight: document.documentElement.scrollHeight,
                                    innerWidth: window.innerWidth});
  document.body.appendChild(out);
})();
</script>
"""


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(chromium: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=True,
        env=env,
    )


def dump_dom(chromium: str, page: Path, width: int = 1280) -> str:
    return _run(chromium, f"--window-size={width},2000", "--dump-dom", page.as_uri()).stdout


def measure(chromium: str, page: Path, work: Path, width: int = 1280) -> dict[str, Any]:
    """The sizes of ``page``'s charts and marks as laid out by Chromium ``width`` wide."""
    text = page.read_text(encoding="utf-8")
    probe = work / f"measure-{width}-{page.name}"
    probe.write_text(text.replace("</body>", MEASURE_SCRIPT + "</body>"), encoding="utf-8")
    dom = dump_dom(chromium, probe, width)
    start = dom.index('<pre id="measured">') + len('<pre id="measured">')
    raw = dom[start : dom.index("</pre>", start)]
    doc: dict[str, Any] = json.loads(raw.replace("&quot;", '"').replace("&amp;", "&"))
    return doc


def screenshot(chromium: str, page: Path, out: Path, width: int, height: int) -> Path:
    _run(chromium, f"--screenshot={out}", f"--window-size={width},{height}", page.as_uri())
    return out


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of raw pixel bytes) of an 8-bit, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, "only 8-bit non-interlaced PNGs"
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = prev[i]
            up_left = prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + left) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + up) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif ftype == 4:
                line[i] = (line[i] + _paeth(left, up, up_left)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def png_colours(path: Path, step: int = 7) -> tuple[int, int, int]:
    """(width, height, distinct colours among every ``step``-th pixel of every ``step``-th row)."""
    width, height, rows = png_pixels(path)
    channels = len(rows[0]) // width
    seen = {
        row[x * channels : (x + 1) * channels]
        for row in rows[::step]
        for x in range(0, width, step)
    }
    return width, height, len(seen)
