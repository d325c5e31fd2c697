"""Ledger load: deletion requests per second and per-request latency from N concurrent processes.

For SQLite (the default file inside the model directory) and PostgreSQL (``--postgres URL``, else
``$ERASEKIT_TEST_POSTGRES_URL``, else a private server started from the installed binaries; the
table says so when none can be started): a tiny SISA model is trained, then ``--processes``
worker processes record ``--requests`` single-example requests between them through
``ShardedModel.add_request`` (what ``erasekit requests add`` calls), each timing its own calls
after a common start. Reported: requests/s over the whole run, p50/p99 latency of one request,
and, for scale, the wall time of one ``erasekit requests add`` process and of one
``--requests-file`` call recording all of them in one transaction.

Writes ``benchmarks/results/ledger_load.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from erasekit.core.io import atomic_write_text
from erasekit.core.provenance import library_versions

RESULTS = Path(__file__).parent / "results"
ERASEKIT = str(Path(sys.executable).with_name("erasekit"))


@dataclass
class LoadResult:
    database: str
    requests: int
    processes: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    cli_single_add_s: float  # median wall time of one `erasekit requests add` process
    cli_bulk_add_s: float  # one `requests add --requests-file` process recording every request
    note: str = ""


def train_model(directory: Path, db: str | None) -> list[int]:
    from erasekit.core import progress
    from erasekit.data import load_digits
    from erasekit.ledger import DataSource, Execution, ShardConfig, train_sisa
    from erasekit.models import ModelSpec
    from erasekit.training import Recipe

    progress.set_enabled(False)
    splits = load_digits()
    config = ShardConfig(spec=ModelSpec("mlp", splits.input_shape, splits.num_classes), recipe=Recipe(epochs=1), seed=0)
    train_sisa(splits, DataSource.absolute("digits"), config, 2, 1, directory, db, Execution(workers=1))
    from erasekit.ledger import ShardedModel

    with ShardedModel.open(directory, db) as model:
        return [int(i) for i in model.assignment.example_ids]


def add_worker(directory: str, db: str | None, ids: list[int], start_at: float, queue) -> None:
    from erasekit.ledger import ShardedModel

    latencies = []
    with ShardedModel.open(Path(directory), db) as model:
        _ = model.assignment  # loaded before the clock starts, as a long-running service would
        while time.time() < start_at:
            time.sleep(0.001)
        begin = time.perf_counter()
        for example_id in ids:
            t0 = time.perf_counter()
            model.add_request([example_id], reason="load test")
            latencies.append(time.perf_counter() - t0)
        end = time.perf_counter()
    queue.put((latencies, begin, end, time.time() - (end - begin)))


def run_load(name: str, db: str | None, n_requests: int, processes: int, work: Path) -> LoadResult:
    directory = work / f"model-{name}"
    ids = train_model(directory, db)
    chosen = [ids[i % len(ids)] for i in range(n_requests)]
    shares = [chosen[p::processes] for p in range(processes)]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 8.0  # every worker has imported erasekit and opened the ledger by then
    workers = [context.Process(target=add_worker, args=(str(directory), db, share, start_at, queue)) for share in shares]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    latencies = np.array([x for r in results for x in r[0]]) * 1000
    started = min(r[3] for r in results)
    ended = max(r[3] + (r[2] - r[1]) for r in results)
    late = max(r[3] for r in results) - start_at
    db_args = ["--db", db] if db else []
    single = []
    for example_id in chosen[:5]:
        t0 = time.perf_counter()
        subprocess.run(
            [ERASEKIT, "requests", "add", "--model-dir", str(directory), *db_args, "--id", str(example_id)],
            check=True,
            capture_output=True,
        )
        single.append(time.perf_counter() - t0)
    requests_file = work / f"requests-{name}.txt"
    requests_file.write_text("".join(f"{i} | bulk load test\n" for i in chosen))
    t0 = time.perf_counter()
    subprocess.run(
        [ERASEKIT, "requests", "add", "--model-dir", str(directory), *db_args, "--requests-file", str(requests_file)],
        check=True,
        capture_output=True,
    )
    bulk = time.perf_counter() - t0
    return LoadResult(
        database=name,
        requests=n_requests,
        processes=processes,
        requests_per_second=n_requests / (ended - started),
        p50_ms=float(np.percentile(latencies, 50)),
        p99_ms=float(np.percentile(latencies, 99)),
        max_ms=float(latencies.max()),
        cli_single_add_s=statistics.median(single),
        cli_bulk_add_s=bulk,
        note=f"workers started within {max(late, 0) * 1000:.0f} ms of each other",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--postgres", default=os.environ.get("ERASEKIT_TEST_POSTGRES_URL"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    from erasekit.ledger.scratch_postgres import PostgresUnavailable, scratch_postgres

    results: list[LoadResult] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        results.append(run_load("sqlite", None, args.requests, args.processes, work))
        print(results[-1])
        url = args.postgres
        if url is None:
            try:
                url = stack.enter_context(scratch_postgres(durable=True))
            except PostgresUnavailable as exc:
                skipped.append(f"PostgreSQL not measured: {exc}")
        if url is not None:
            results.append(run_load("postgresql", url, args.requests, args.processes, work))
            print(results[-1])
    load = os.getloadavg()[0]
    header = (
        f"{datetime.now(UTC).isoformat(timespec='seconds')} · {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load:.2f} · python {platform.python_version()} · "
        f"{args.requests} single-example requests from {args.processes} processes"
    )
    lines = [
        "# Ledger load",
        "",
        header,
        "",
        "| database | requests/s | p50 ms | p99 ms | max ms | one `requests add` process, s | one `--requests-file` of all, s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.database} | {r.requests_per_second:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} | "
            f"{r.cli_single_add_s:.2f} | {r.cli_bulk_add_s:.2f} |"
        )
    lines += ["", *skipped, ""] if skipped else [""]
    lines.append(
        "Latency is one `add_request` call (one transaction) inside a process that has the ledger open, "
        "as a service would; the `requests add` columns include starting Python and importing erasekit. "
        "SQLite serialises writers (`BEGIN IMMEDIATE`, WAL); PostgreSQL runs them concurrently. "
        "Both commit durably (fsync on); the PostgreSQL server is a local one on the same machine."
    )
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "ledger_load.md", "\n".join(lines) + "\n")
    payload = {"header": header, "results": [asdict(r) for r in results], "skipped": skipped, "versions": library_versions()}
    atomic_write_text(args.out / "ledger_load.json", json.dumps(payload, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
