"""A real PostgreSQL (Debian's package) in a temp folder on a free loopback port, for MLflow."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.helpers import free_port

USER = "mlflow"
PASSWORD = "mlflow-test-password"
DATABASE = "mlflow"
# A throwaway cluster: durability off (fsync, full pages, synchronous commit) keeps it fast.
SERVER_OPTIONS = "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"


@dataclass(frozen=True)
class Postgres:
    """A running PostgreSQL cluster: where it listens and the MLflow database in it."""

    host: str
    port: int
    data: Path

    @property
    def uri(self) -> str:
        """The MLflow backend-store URI (SQLAlchemy with psycopg 3)."""
        return f"postgresql+psycopg://{USER}:{PASSWORD}@{self.host}:{self.port}/{DATABASE}"

    def connect(self) -> psycopg.Connection:
        """A psycopg connection to the MLflow database."""
        return psycopg.connect(
            host=self.host, port=self.port, user=USER, password=PASSWORD, dbname=DATABASE
        )


def bin_dir() -> Path:
    """The newest Debian PostgreSQL server's bin folder (`make test` installs the package)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3])
    )
    if not found:
        pytest.fail("PostgreSQL server not found: install Debian's postgresql (`make postgres`)")
    return Path(found[-1]).parent


def _as_server_user(command: list[str]) -> list[str]:
    """`command` run as the postgres user when we are root (pg_ctl and initdb refuse root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str]) -> None:
    """Run a PostgreSQL tool; fail with its output when it fails."""
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout}\n{done.stderr}"


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """initdb + pg_ctl a temp cluster on 127.0.0.1:PORT (socket in the temp folder); stop it and
    delete it afterwards."""
    tools = bin_dir()
    # Under /tmp (not pytest's 0700 folders): the postgres user must reach it when we are root.
    folder = Path(tempfile.mkdtemp(prefix="myllama-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, log = folder / "data", folder / "server.log"
    password_file = folder / "password"
    password_file.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(password_file, "postgres", "postgres")
    port = free_port()
    started = False
    try:
        _run([str(tools / "initdb"), "--pgdata", str(data), "--username", USER,
              f"--pwfile={password_file}", "--auth-local=trust", "--auth-host=scram-sha-256",
              "--encoding=UTF8", "--locale=C.UTF-8"])  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} {SERVER_OPTIONS}"
        # -w: pg_ctl itself polls until the server accepts connections (or -t runs out).
        _run([str(tools / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data), "-l", str(log),
              "-o", options])  # fmt: skip
        started = True
        with psycopg.connect(
            host="127.0.0.1", port=port, user=USER, password=PASSWORD, dbname="postgres",
            autocommit=True,
        ) as connection:  # fmt: skip
            connection.execute(f"CREATE DATABASE {DATABASE}")
        yield Postgres(host="127.0.0.1", port=port, data=data)
    finally:
        if started:
            _run([str(tools / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(data)])
        shutil.rmtree(folder, ignore_errors=True)
