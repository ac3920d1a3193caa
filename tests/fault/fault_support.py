"""The fault suite's own parts: a PostgreSQL cluster and a Redis the suite starts itself, the portal under
gunicorn, and the clients (submitters, slow clients, probes). Nothing here touches the machine's shared
PostgreSQL (5432) or Redis (6379): every server runs on a free loopback port, with its files in one temporary
folder, and is stopped by its own process id (or pid file) on the way out."""

from __future__ import annotations

import glob
import html
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
HOST = "127.0.0.1"
INPUT = re.compile(r"<input\b[^>]*>")


class HiddenInput:
    """A form's <input name=...> value, whatever the order of its attributes."""

    def __init__(self, name: str) -> None:
        self.name = f'name="{name}"'

    def search(self, page: str) -> re.Match | None:
        for tag in INPUT.finditer(page):
            if self.name in tag.group(0):
                return re.search(r'value="([^"]*)"', tag.group(0))
        return None


CSRF = HiddenInput("csrf_token")
SUBMISSION = HiddenInput("submission")
RECEIPT = re.compile(r'<span id="receipt"[^>]*>(.*?)</span><span class="visually-hidden">', re.S)
TAGS = re.compile(r"<[^>]+>")
REFERENCE = re.compile(r'id="case-reference">([^<]+)<')
STATUS_REFERENCE = re.compile(r'<h1>Your report <span class="nowrap">([^<]+)</span>')


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries under /usr/lib/postgresql/*/bin (Debian's layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def missing_parts() -> str | None:
    """Why the suite cannot run here, or None when it can."""
    if postgres_bin() is None:
        return "no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    if shutil.which("redis-server") is None:
        return "no redis-server (apt-get install redis-server)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser to start PostgreSQL as the postgres user"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root with no postgres OS user to run PostgreSQL as"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for(check, seconds: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {seconds:.0f} s")


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


class Postgres:
    """A cluster of our own: initdb in a temporary folder, run as the postgres OS user when we are root."""

    def __init__(self, base: Path) -> None:
        self.bin = postgres_bin()
        assert self.bin is not None
        self.folder = base / "pg"
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "socket"
        self.log = self.folder / "server.log"
        self.port = free_port()
        self.folder.mkdir()
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/portal"

    def run(self, *command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        argv = [str(self.bin / command[0]), *command[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check, cwd="/")

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        # fsync off: this suite kills the server, never the machine, so what the OS holds is not lost; the
        # restart after an immediate stop still replays the WAL as after a crash.
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses={HOST} -c fsync=off "
            "-c max_connections=100 -c shared_buffers=32MB"
        )
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@{HOST}:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE portal")


class Redis:
    """A redis-server of our own on a free port, in the foreground of a process we hold."""

    def __init__(self, base: Path) -> None:
        self.folder = base / "redis"
        self.folder.mkdir()
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        command = [
            "redis-server", "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
            "--dir", str(self.folder), "--protected-mode", "no",
        ]  # fmt: skip
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - held by the process
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        wait_for(lambda: port_open(self.port), 20, "redis-server")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


class Gunicorn:
    """The portal as deployed: `gunicorn -c python:portal.web.gunicorn_settings wsgi:app`."""

    def __init__(self, base: Path, env: dict[str, str], workers: int) -> None:
        self.port = free_port()
        self.env = {**env, "PORTAL_BIND": f"{HOST}:{self.port}", "WEB_CONCURRENCY": str(workers)}
        self.workers = workers
        self.log = base / "gunicorn.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        handle = open(self.log, "ab")  # noqa: SIM115 - held by the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:portal.web.gunicorn_settings", "wsgi:app"],
            cwd=str(ROOT),
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text(errors='replace')[-3000:]}")
            return request(self.port, "GET", "/healthz", timeout=2)[0] == 200 and len(self.worker_pids()) >= 1

        wait_for(ready, 60, "gunicorn")
        wait_for(lambda: len(self.worker_pids()) >= self.workers, 30, "every gunicorn worker")

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                fields = stat[stat.rfind(")") + 2 :].split()
                if len(fields) > 1 and int(fields[1]) == self.proc.pid:
                    pids.append(int(entry))
        return sorted(pids)

    def kill_a_worker(self, index: int) -> int | None:
        pids = self.worker_pids()
        if not pids:
            return None
        pid = pids[index % len(pids)]
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return pid

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the master and its workers only
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def new_folder() -> Path:
    """A temporary folder the postgres OS user can enter (pytest's tmp_path is root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="portal-fault-"))
    base.chmod(0o755)
    return base


def run_init(env: dict[str, str], recovery_key: Path) -> None:
    command = [sys.executable, "-m", "flask", "--app", "wsgi:app", "portal", "init", "--recovery-key-out"]
    done = subprocess.run(
        [*command, str(recovery_key)], cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=180
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask portal init failed: {done.stdout}\n{done.stderr}")


# ---------------------------------------------------------------- HTTP


def reporter_address(n: int) -> str:
    """A loopback address of its own for reporter n (all of 127/8 reaches the server on Linux): the portal's
    per-address limits count each reporter apart, as they would count people on their own connections."""
    return f"127.1.{(n // 250) % 250}.{n % 250 + 1}"


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 30,
    source: str | None = None,
) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout, source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read().decode("utf-8", "replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def cookie_of(headers: dict[str, str], old: str = "") -> str:
    fresh = headers.get("set-cookie", "").split(";", 1)[0]
    return fresh or old


def receipt_in(page: str) -> str | None:
    found = RECEIPT.search(page)
    return html.unescape(TAGS.sub("", found.group(1))).strip() if found else None


def multipart(fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    boundary = "----FaultSuite" + os.urandom(12).hex()
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; filename=""\r\n'
        "Content-Type: application/octet-stream\r\n\r\n\r\n"
    )
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"


def report_fields(csrf: str, submission: str, n: int) -> list[tuple[str, str]]:
    return [
        ("csrf_token", csrf),
        ("submission", submission),
        ("mode", "anonymous"),
        ("category", "bullying"),
        ("summary", f"Fault suite report {n}"),
        ("details", f"Report number {n} of the fault suite: a sergeant shouts at probationers on early shifts."),
        ("subject_name", "Sgt Pat Example"),
        ("subject_staff_number", f"FS{n}"),
        ("subject_command", ""),
        ("occurred_on", ""),
        ("location", "Yard of a station"),
        ("witnesses", ""),
        ("reporter_name", ""),
        ("reporter_contact", ""),
    ]


def status_opens(port: int, receipt: str, source: str | None = None) -> str | None:
    """The reporter's way back: GET /status for a session and token, POST the receipt, follow to the page.
    Returns the case reference the status page shows, or None when the receipt did not open it."""
    status, headers, page = request(port, "GET", "/status", source=source)
    csrf = CSRF.search(page)
    if status != 200 or csrf is None:
        return None
    cookie = cookie_of(headers)
    body = f"csrf_token={csrf.group(1)}&receipt={receipt}".encode()
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    status, headers, _ = request(port, "POST", "/status", body, form, source=source)
    if status != 303:
        return None
    status, _, page = request(port, "GET", "/status", headers={"Cookie": cookie_of(headers, cookie)}, source=source)
    found = STATUS_REFERENCE.search(page)
    return found.group(1) if status == 200 and found else None


# ---------------------------------------------------------------- clients


@dataclass
class Outcome:
    """What one reporter saw: every status code, and the receipt the portal acknowledged (if any)."""

    started: float
    address: str
    statuses: list[tuple[float, str, int]] = field(default_factory=list)
    receipt: str | None = None
    reference: str | None = None
    acknowledged_at: float | None = None
    dropped: int = 0  # connections closed before an answer (a worker killed mid-request)
    dropped_posts: int = 0  # of those, while sending the report: it may have been committed, or not
    form_kept_on_503: bool = True


class Submitters:
    """Threads that each act as reporters, one after another: GET /report, then POST it with the CSRF and
    submission tokens; on a 503 or a dropped connection the same form (same tokens) is sent again until the
    portal acknowledges it with a receipt, as a reporter pressing the button again would."""

    def __init__(self, port: int, threads: int) -> None:
        self.port = port
        self.threads = threads
        self.stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()
        self.counter = 0
        self.pool: list[threading.Thread] = []

    def start(self) -> None:
        self.pool = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.threads)]
        for thread in self.pool:
            thread.start()

    def finish(self, seconds: float) -> None:
        self.stop.set()
        for thread in self.pool:
            thread.join(timeout=seconds)

    def _loop(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                self.counter += 1
                n = self.counter
            outcome = Outcome(time.monotonic(), reporter_address(n))
            with self.lock:
                self.outcomes.append(outcome)
            self._one(outcome, n)

    def _see(self, outcome: Outcome, what: str, status: int) -> None:
        outcome.statuses.append((time.monotonic(), what, status))

    def _one(self, outcome: Outcome, n: int) -> None:
        give_up = time.monotonic() + 60
        form = None
        while form is None and time.monotonic() < give_up:
            try:
                status, headers, page = request(self.port, "GET", "/report", timeout=20, source=outcome.address)
            except (OSError, http.client.HTTPException):
                outcome.dropped += 1
                time.sleep(0.2)
                continue
            self._see(outcome, "GET /report", status)
            csrf, token = CSRF.search(page), SUBMISSION.search(page)
            if status == 200 and csrf and token and cookie_of(headers):
                form = (cookie_of(headers), csrf.group(1), token.group(1))
            else:
                time.sleep(0.3)
        if form is None:
            return
        cookie, csrf, token = form
        # Once a form is in hand the reporter does not give up when the run ends: they press the button
        # again until the portal acknowledges it (bounded by give_up).
        while time.monotonic() < give_up:
            body, kind = multipart(report_fields(csrf, token, n))
            try:
                status, headers, page = request(
                    self.port,
                    "POST",
                    "/report",
                    body,
                    {"Content-Type": kind, "Cookie": cookie},
                    timeout=20,
                    source=outcome.address,
                )
            except (OSError, http.client.HTTPException):
                outcome.dropped += 1
                outcome.dropped_posts += 1
                time.sleep(0.2)
                continue
            self._see(outcome, "POST /report", status)
            cookie = cookie_of(headers, cookie)
            receipt = receipt_in(page) if status == 200 else None
            if receipt:
                outcome.receipt, outcome.acknowledged_at = receipt, time.monotonic()
                found = REFERENCE.search(page)
                outcome.reference = found.group(1) if found else None
                return
            if status == 503:
                # Everything typed must come back, with the same submission token.
                kept = SUBMISSION.search(page)
                if f"Fault suite report {n}" not in page or kept is None or kept.group(1) != token:
                    outcome.form_kept_on_503 = False
                fresh = CSRF.search(page)
                csrf = fresh.group(1) if fresh else csrf
                time.sleep(0.5)
                continue
            if status >= 500 or status == 429:
                time.sleep(0.3)
                continue
            return  # anything else (an 'already sent' page with no receipt, a 400): not acknowledged


class SlowClients:
    """Connections that send a request's header lines slowly (one every `every` seconds) and never finish,
    reopened when the server closes them: they hold whatever they can for as long as the run wants."""

    def __init__(self, port: int, count: int, every: float) -> None:
        self.port, self.count, self.every = port, count, every
        self.stop = threading.Event()
        self.opened = 0
        self.connected = 0  # open right now
        self.lock = threading.Lock()
        self.pool = [threading.Thread(target=self._hold, daemon=True) for _ in range(count)]

    def start(self) -> None:
        for thread in self.pool:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.pool:
            thread.join(timeout=self.every + 5)

    def _hold(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection((HOST, self.port), timeout=5) as sock:
                    with self.lock:
                        self.opened += 1
                        self.connected += 1
                    try:
                        sock.sendall(b"GET /report HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                        line = 0
                        while not self.stop.wait(self.every):
                            line += 1
                            sock.sendall(f"X-Slow-{line}: {'a' * 10}\r\n".encode())
                    finally:
                        with self.lock:
                            self.connected -= 1
            except OSError:
                self.stop.wait(0.2)


def probe_latencies(port: int, seconds: float, gap: float, slow: SlowClients) -> list[tuple[str, float, int]]:
    """Normal requests one at a time (GET /healthz and GET /report in turn): how long each took, in seconds,
    and how many slow clients were connected as it began; a request that failed or took over 10 s counts as
    10 s."""
    found = []
    deadline = time.monotonic() + seconds
    paths = ["/healthz", "/report"]
    i = 0
    while time.monotonic() < deadline:
        path = paths[i % 2]
        i += 1
        held = slow.connected
        began = time.monotonic()
        try:
            status, _, _ = request(port, "GET", path, timeout=10)
            took = time.monotonic() - began if status == 200 else 10.0
        except (OSError, http.client.HTTPException):
            took = 10.0
        found.append((path, took, held))
        time.sleep(gap)
    return found
