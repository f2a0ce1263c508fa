"""How long `make demo` takes after set-up: the command as a user runs it (a fresh process: the
local cloud, the emulator and the journey), its default run and with `--faults`, each a few times.

    make synth && .venv/bin/python -m benchmarks.demo [--runs 3]

Wall time is the whole process (start to exit: imports, deploy into moto, the journey, stopping);
the journey's own time is what the demo prints at its end. `make demo` adds a synth (`make synth`
re-runs the CDK app; see "Packaging and cold start" for its time). The load average is printed
with the figures: on a busy machine every figure grows.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES: dict[str, list[str]] = {"make demo (default)": [], "with --faults": ["--faults"]}


def run_once(args: list[str]) -> tuple[float, float]:
    """(wall seconds of the process, the journey's seconds as it reports them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with tempfile.TemporaryDirectory() as scratch:  # the demo's log goes to ./build
        began = time.monotonic()
        done = subprocess.run(  # noqa: S603 - this interpreter running the demo
            [sys.executable, "-m", "localcloud", "demo", "--cdk-out", str(REPO / "cdk.out"), *args],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        wall = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(f"the demo failed ({done.returncode}):\n{done.stdout[-3000:]}")
    journey = re.search(r"journey complete in (\d+\.\d) s", done.stdout)
    assert journey is not None, done.stdout[-2000:]
    return wall, float(journey.group(1))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.demo")
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args(argv).runs
    load_before = os.getloadavg()[0]
    rows = []
    for case, args in CASES.items():
        times = [run_once(args) for _ in range(runs)]
        walls, journeys = [w for w, _ in times], [j for _, j in times]
        rows.append((case, statistics.median(walls), max(walls), statistics.median(journeys)))
    load_after = os.getloadavg()[0]
    print("| run | process wall, median (s) | slowest (s) | the journey alone, median (s) |")
    print("| --- | --- | --- | --- |")
    for case, wall, slowest, journey in rows:
        print(f"| {case} | {wall:.1f} | {slowest:.1f} | {journey:.1f} |")
    print(
        f"\n{runs} runs each; load average (1 min, 2 CPUs) {load_before:.1f} before, "
        f"{load_after:.1f} after."
    )


if __name__ == "__main__":
    main()
