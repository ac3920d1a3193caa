"""Real parts that fail on demand, for the outage tests: a redis-server of the test's own on a free port (never
6379), and a PostgreSQL database of the test's own (never the server) that stops taking connections."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis as redis_client

# The suite's own way to run statements on the maintenance database (outside any transaction).
from tests.factories import _postgres


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server started by the test, killed and started again on the same port."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("redis-server") is None:
            if os.environ.get("PORTAL_REQUIRE_REDIS"):
                pytest.fail("redis-server is required here (PORTAL_REQUIRE_REDIS) but is not installed")
            pytest.skip("redis-server is not installed")
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        self.process = subprocess.Popen(
            [*command, "no", "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis_client.RedisError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def client(self) -> redis_client.Redis:
        return redis_client.Redis.from_url(self.url, socket_connect_timeout=1)


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def cut_database(name: str) -> None:
    """The database stops taking connections and loses those it had: to the app, PostgreSQL is gone."""
    _postgres(
        f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    )


def restore_database(name: str) -> None:
    _postgres(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def terminate_backend(pid: int) -> None:
    _postgres(f"SELECT pg_terminate_backend({int(pid)})")


@contextmanager
def database_cut(name: str) -> Iterator[None]:
    cut_database(name)
    try:
        yield
    finally:
        restore_database(name)
