"""A throwaway PostgreSQL server for tests and benchmarks, started from the installed binaries.

Not for production ledgers: it trusts every local connection.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No server could be started here; the message says why."""


def postgres_binaries() -> Path | None:
    """The folder holding ``initdb``/``pg_ctl``: on PATH, else the newest ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    candidates.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return candidates[-1] if candidates else None


@contextmanager
def scratch_postgres(parent: Path | None = None, durable: bool = False) -> Iterator[str]:
    """Start a private server on a free local port; yields its URL and stops it afterwards.

    ``durable=False`` turns fsync off (fast tests); benchmarks keep it on.

    As root the server runs as user ``postgres`` (it refuses to run as root). Raises
    :class:`PostgresUnavailable` when there are no binaries or the server does not start.
    """
    binaries = postgres_binaries()
    if binaries is None:
        raise PostgresUnavailable("no PostgreSQL server binaries (install Debian's postgresql package)")
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="erasekit-pg-", dir=parent))
    try:
        if os.geteuid() == 0:
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no 'postgres' user to run the server as") from None
            prefix = [shutil.which("runuser") or "runuser", "-u", "postgres", "--"]
            shutil.chown(folder, "postgres")
            folder.chmod(0o755)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        cluster = folder / "cluster"

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)

        result = run(str(binaries / "initdb"), "-D", str(cluster), "-A", "trust", "-U", "erasekit")
        if result.returncode == 0:
            options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1" + ("" if durable else " -c fsync=off")
            result = run(str(binaries / "pg_ctl"), "-D", str(cluster), "-o", options, "-l", str(folder / "log"), "-w", "start")
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise PostgresUnavailable(f"the server did not start: {last[0]}")
        try:
            yield f"postgresql://erasekit@127.0.0.1:{port}/postgres"
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(cluster), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
