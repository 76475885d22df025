"""Start-up benchmark (not a test): the median wall time of N fresh processes of
`drtool --version` and `drtool status` (a local file:// storage with no records: the health
check path), against `python -c pass` (the floor: the interpreter and site start-up).

Each --tree is a source tree put first on PYTHONPATH (default: this one), so two checkouts
(before/after) are measured in the same run, the commands alternating round by round. The
warm-up run writes the bytecode caches, as `pip install` does for the Docker image's wheel
(PYTHONDONTWRITEBYTECODE is dropped); --no-bytecode measures compiling every module instead.
Usage: python -m bench.startup_bench --runs 30 [--tree /path/before --tree /path/after]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from drtool.crypto.keys import generate_identity, write_identity_file

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    # cwd is outside every tree: `python -m` puts it first on sys.path, before PYTHONPATH.
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 4):  # status exits 4: no backup yet breaches the RPO
        raise SystemExit(f"{argv} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return wall


def write_config(work: Path) -> Path:
    identity = generate_identity()
    write_identity_file(work / "id.txt", identity)
    cfg = work / "drtool.yaml"
    doc = {
        "database": {"dsn": "postgresql://drtool@127.0.0.1:1/none"},
        "storage": {"url": f"file://{work / 'store'}"},
        "encryption": {"recipients": [identity.recipient().encode()]},
    }
    cfg.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--python", default=sys.executable, help="interpreter to run")
    parser.add_argument("--tree", type=Path, action="append", help="source tree (repeatable)")
    parser.add_argument("--no-bytecode", action="store_true", help="no .pyc for the trees")
    args = parser.parse_args()
    trees: list[Path] = args.tree or [ROOT]
    with tempfile.TemporaryDirectory(prefix="drtool-startup-") as tmp:
        cfg = write_config(Path(tmp))
        drop = ("DRTOOL_CONFIG", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
        base = {k: v for k, v in os.environ.items() if k not in drop}
        if args.no_bytecode:
            base["PYTHONDONTWRITEBYTECODE"] = "1"
            for tree in trees:
                for cache in (tree / "drtool").rglob("__pycache__"):
                    shutil.rmtree(cache)
        cases: list[tuple[str, list[str], dict[str, str]]] = [
            ("python -c pass", [args.python, "-c", "pass"], base)
        ]
        for tree in trees:
            env = {**base, "PYTHONPATH": str(tree.resolve())}
            drtool = [args.python, "-m", "drtool"]
            cases.append((f"{tree}: drtool --version", [*drtool, "--version"], env))
            status = [*drtool, "--config", str(cfg), "status"]
            cases.append((f"{tree}: drtool status (file://)", status, env))
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _name, argv, env in cases:  # warm the page cache and the bytecode caches
            timed(argv, env, Path(tmp))
        for _ in range(args.runs):
            for name, argv, env in cases:
                times[name].append(timed(argv, env, Path(tmp)))
    print(
        f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f}; {args.runs} runs each, interleaved; bytecode caches "
        f"{'off' if args.no_bytecode else 'on'}"
    )
    for name, samples in times.items():
        print(
            f"  {name:70s} median {statistics.median(samples):.3f} s"
            f"  (min {min(samples):.3f}, max {max(samples):.3f})"
        )


if __name__ == "__main__":
    main()
