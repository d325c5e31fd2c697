"""How long ``erasekit --help`` takes, against the floor of starting Python and importing click.

Runs each command ``REPEATS`` times, interleaved, in fresh processes, and writes the medians to
``benchmarks/results/cli_startup.md`` and ``.json``. The target (issue 10) is under 1.0 s on these
2-core machines; the ratio to ``python -c "import click"`` is the number to compare across machines.

``CLI_BENCH_BASELINE=DIR`` (the ``src`` folder of another checkout, e.g. a ``git worktree`` of an
older commit) adds that version's ``--help`` to the same interleaved run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from erasekit.core.io import atomic_write_text
from erasekit.core.provenance import library_versions

RESULTS = Path(__file__).parent / "results"
REPEATS = int(os.environ.get("CLI_BENCH_REPEATS", "15"))
ERASEKIT = str(Path(sys.executable).with_name("erasekit"))
COMMANDS = {
    "python -c 'import click'": [sys.executable, "-c", "import click"],
    "erasekit --help": [ERASEKIT, "--help"],
    "erasekit --version": [ERASEKIT, "--version"],
    "erasekit unlearn --help": [ERASEKIT, "unlearn", "--help"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}
BASELINE = os.environ.get("CLI_BENCH_BASELINE")
if BASELINE:
    COMMANDS["baseline erasekit --help"] = [
        sys.executable,
        "-c",
        f"import sys; sys.argv = ['erasekit', '--help']; sys.path.insert(0, {str(Path(BASELINE).resolve())!r}); "
        "from erasekit.cli import main; sys.exit(main())",
    ]


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    for command in COMMANDS.values():  # warm the file cache once
        _seconds(command)
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(REPEATS):
        for name, command in COMMANDS.items():
            samples[name].append(_seconds(command))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    floor = medians["python -c 'import click'"]
    record = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}",
        "versions": library_versions(),
        "repeats": REPEATS,
        "baseline": BASELINE,
        "median_seconds": medians,
        "samples": samples,
    }
    lines = [
        "# CLI start-up time",
        "",
        f"{record['date']} · {record['machine']} · erasekit {record['versions']['erasekit']} · "
        f"python {record['versions']['python']} · median of {REPEATS} interleaved runs, each a fresh process.",
        "",
        "| command | median s | × `import click` |",
        "|---|---|---|",
    ]
    lines += [f"| `{name}` | {seconds:.3f} | {seconds / floor:.1f} |" for name, seconds in medians.items()]
    if BASELINE:
        lines += [
            "",
            f"Baseline: `--help` of the checkout at `{BASELINE}` in the same run, "
            f"{medians['baseline erasekit --help'] / medians['erasekit --help']:.1f}× slower than this one.",
        ]
    verdict = "met" if medians["erasekit --help"] < 1.0 else "NOT met"
    lines += [
        "",
        f"Target `erasekit --help` < 1.0 s on this machine: **{verdict}** ({medians['erasekit --help']:.3f} s). "
        "`--help` loads no torch, pandas or scipy (tests/test_architecture.py checks that); "
        "`import torch` is shown for scale.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "cli_startup.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(RESULTS / "cli_startup.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
