"""What both benchmarks (run.py, gateway.py) need: free ports, a CPU meter, a throwaway database.
Imports nothing heavy at the top: gateway.py's client processes import their module afresh."""

from __future__ import annotations

import os
import socket

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def cpu_seconds(pids) -> float:
    """User + system CPU time of these processes so far (those gone since are skipped)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def plain_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def recreate_database(url: str) -> None:
    """Drop and create the benchmark's database; refuses any whose name does not say it is one."""
    import psycopg
    from psycopg import sql

    name = psycopg.conninfo.conninfo_to_dict(plain_url(url)).get("dbname") or ""
    if "bench" not in name or name == "test":  # it is dropped: never a development, CI or production database
        raise SystemExit(f"the benchmark drops and recreates its database; {name!r} does not look like one "
                         "(its name must contain 'bench')")
    admin = psycopg.conninfo.make_conninfo(plain_url(url), dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
