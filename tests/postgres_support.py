"""A real PostgreSQL server for the tests, started by the test session itself: Debian's
`postgresql` package (scripts/ensure-system-deps.sh installs it), `initdb` in a temporary
folder, a free loopback port, stopped and removed at the end. Each test gets a database of its
own (`postgres_url`), so tests do not see each other's rows.

PostgreSQL refuses to run as root: as root (CI containers, this VM) the server runs as the
`postgres` user the Debian package creates, through runuser. Without the package the fixture
skips, and under CI=true conftest turns that skip into a failure.

Use: `from tests.postgres_support import postgres, postgres_url  # noqa: F401 (fixtures)`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from playground.db.engine import dispose
from tests.support import wait_for

USER = "playground"  # the server's superuser (trust auth on loopback: a test server only)


def bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PortTaken(RuntimeError):
    pass


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="playground-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.log = self.folder / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:  # postgres will not run as root: the Debian package's own user
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' user to run PostgreSQL as") from None
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        done = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "-A", "trust",
                         "--locale=C.UTF-8", "-E", "UTF8", "--no-sync")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr or done.stdout}")
        for attempt in range(3):  # a free port can be taken between the probe and the bind (xdist workers)
            try:
                self._launch()
                return
            except PortTaken:
                self.port = _free_port()
        raise RuntimeError(f"PostgreSQL found no free port (log: {self.log})")

    def _launch(self) -> None:
        # Durability off: a test server's data is thrown away; these make its writes quick.
        settings = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}",
                    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                    "-c", "max_connections=200"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([*self._as, str(self.bin / "postgres"), "-D", str(self.data),
                                             "-p", str(self.port), *settings],
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._ready, 60, f"PostgreSQL on port {self.port} (log: {self.log})")

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            log = self.log.read_text(errors="replace")[-2000:]
            if "could not bind" in log or "Address already in use" in log:
                raise PortTaken(log)
            raise RuntimeError(f"PostgreSQL exited: {log}")
        try:
            self.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - not accepting connections yet
            return False
        return True

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={USER} dbname={database}",
                             autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # "fast" shutdown: disconnect clients, stop
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    found = bin_dir()
    if found is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; make test installs it)")
    server = PostgresServer(found)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresServer):
    url = postgres.new_database()
    yield url
    dispose(url)  # the pool's connections: a session of tests would otherwise run the server out of them
