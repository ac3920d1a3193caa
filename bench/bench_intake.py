#!/usr/bin/env python3
"""Intake benchmarks for the concern portal, under gunicorn, on SQLite or PostgreSQL.

What it measures (bench/README.md says how to run it; bench/RESULTS.md has figures):

 (a) throughput: report submissions per second (POST /report, the real form with session cookie and
     CSRF token) against a bare Flask app (bench/bare_app.py: GET /hello, and POST /form parsing the
     same multipart body), both under gunicorn with gunicorn.conf.py, same load generator, same
     concurrency, interleaved rounds in one run.            Target: portal >= 40% of bare.
 (b) status look-up latency: POST /status with a valid receipt (-> 303) and with a wrong one (-> 400),
     on an instance holding 1,000 cases and on one holding 100,000, both served at once and measured
     interleaved, one request at a time.                    Target: 100k within 10% of 1k.
     Also the look-up query alone, in process, and its query plan.
 (c) resident memory (VmRSS) of a gunicorn worker after it has served 10,000 submissions.
                                                             Target: < 150 MB.

Everything runs on 127.0.0.1 only. Every process it starts is stopped on the way out, error or not;
every loop is bounded in count or time, and a watchdog ends the whole run after --time-limit seconds.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
PLACEHOLDER = b"@@N@@"  # replaced per request by a number, so submissions are not all about one officer
SUBMISSION = "@@S@@"  # replaced per request by a fresh one-time submission token, as GET /report gives one
BOUNDARY = "@@B@@"  # replaced per request by a fresh multipart boundary, as a browser makes one per request
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
OFFICERS = 20000  # staff numbers cycle over this many officers
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SECRET_VARIABLES = (
    "PORTAL_SECRET_KEY",
    "PORTAL_RECEIPT_PEPPER",
    "PORTAL_BLIND_INDEX_KEY",
    "PORTAL_RECOVERY_PUBLIC_KEY",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------- processes we start (and always stop)


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


class Processes:
    """Every gunicorn this run starts. stop_all() is idempotent and runs on exit, error or signal."""

    def __init__(self) -> None:
        self.servers: list[Server] = []
        self.lock = threading.Lock()

    def add(self, server: Server) -> None:
        with self.lock:
            self.servers.append(server)

    def stop(self, server: Server, grace: float = 10.0) -> None:
        proc = server.proc
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)  # gunicorn master: graceful stop of its workers
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # The master ran in its own process group (start_new_session): whatever is left of it, by its id.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        with self.lock:
            if server in self.servers:
                self.servers.remove(server)

    def stop_all(self) -> None:
        for server in list(self.servers):
            self.stop(server)


PROCESSES = Processes()
atexit.register(PROCESSES.stop_all)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def clean_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    for name in ("DATABASE_URL", "PORTAL_INSTANCE", "PORTAL_BIND", "WEB_CONCURRENCY", "FLASK_APP"):
        env.pop(name, None)
    return env


def start_gunicorn(
    name: str, app_spec: str, env_extra: dict[str, str], workers: int | None, log_dir: Path, ready_path: str
) -> Server:
    """gunicorn -c gunicorn.conf.py APP, the project's settings, on a free loopback port."""
    port = free_port()
    env = clean_environment()
    env.update(env_extra)
    env["PORTAL_BIND"] = f"{HOST}:{port}"
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    log_path = log_dir / f"gunicorn-{name}-{port}.log"
    handle = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
    if control_socket_option():
        # gunicorn >= 25.1 opens a control socket at one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn);
        # the bench's servers must not take it from another gunicorn on this machine. Same for all.
        command.append("--no-control-socket")
    proc = subprocess.Popen(
        [*command, app_spec],
        cwd=str(ROOT),
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    handle.close()
    server = Server(name, proc, port, log_path)
    PROCESSES.add(server)
    deadline = time.monotonic() + 40
    expected = workers or None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"gunicorn {name} exited ({proc.returncode}); see {log_path}:\n{tail(log_path)}")
        try:
            status, _, _ = http_request(port, "GET", ready_path, timeout=2)
            if status == 200 and (expected is None or len(worker_pids(proc.pid)) >= expected):
                return server
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"gunicorn {name} did not answer {ready_path} within 40 s; see {log_path}")


def control_socket_option() -> bool:
    import gunicorn

    return tuple(gunicorn.version_info[:2]) >= (25, 1)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's children (its workers), by scanning /proc for their parent id."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name in parentheses, which may itself hold spaces.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == master:
            pids.append(int(entry))
    return sorted(pids)


def vmrss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# ---------------------------------------------------------------- HTTP helpers


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def session_and_token(port: int, path: str) -> tuple[str, str]:
    """A client session as a browser gets it: the session cookie and the form's CSRF token."""
    status, headers, data = http_request(port, "GET", path)
    if status != 200:
        raise BenchError(f"GET {path} answered {status}")
    cookie = headers.get("set-cookie", "").split(";", 1)[0]
    match = CSRF.search(data.decode("utf-8", "replace"))
    if not cookie or not match:
        raise BenchError(f"GET {path}: no session cookie or no CSRF token")
    return cookie, match.group(1)


def multipart(fields: list[tuple[str, str]], boundary: str) -> bytes:
    parts = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
    # A browser sends the empty file input too.
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; filename=""\r\n'
        "Content-Type: application/octet-stream\r\n\r\n\r\n"
    )
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode()


def report_form_fields(csrf_token: str) -> list[tuple[str, str]]:
    """What the report form sends for an anonymous report, as a browser sends it."""
    return [
        ("csrf_token", csrf_token),
        ("submission", SUBMISSION),
        ("mode", "anonymous"),
        ("category", "bullying"),
        ("summary", "A sergeant shouts at probationers on early shifts"),
        (
            "details",
            "On several early shifts the sergeant shouted at two probationers in the yard, called them "
            "useless in front of members of the public and told them that if they complained they would "
            "not pass their probation. One of them was in tears afterwards. It has happened at least four "
            "times since March, always when the inspector was not on duty. Other constables saw it but "
            "nobody has said anything because the sergeant decides who gets overtime and courses. I am "
            "raising it because I think it will get worse and somebody will leave.",
        ),
        ("subject_name", "Sgt Pat Example"),
        ("subject_staff_number", "AB" + PLACEHOLDER.decode()),
        ("subject_command", "CE"),
        ("occurred_on", (date.today() - timedelta(days=30)).isoformat()),
        ("location", "Yard of a station"),
        ("witnesses", "Another constable on the shift"),
        ("reporter_name", ""),
        ("reporter_contact", ""),
    ]


@dataclass
class Target:
    """One kind of request a load generator sends. A body template may hold PLACEHOLDER (a number per
    request) and BOUNDARY (a random multipart boundary per request, in the body and the headers)."""

    name: str
    port: int
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    template: bytes | None = None
    expect_status: int = 200
    expect_marker: bytes | None = None

    def render(self, n: int, rng: random.Random) -> tuple[bytes | None, dict[str, str]]:
        if self.template is None:
            return None, self.headers
        boundary = "----WebKitFormBoundary" + "".join(rng.choice(ALNUM) for _ in range(16))
        body = self.template.replace(BOUNDARY.encode(), boundary.encode())
        body = body.replace(PLACEHOLDER, str(n % OFFICERS).encode())
        body = body.replace(SUBMISSION.encode(), "".join(rng.choice(ALNUM) for _ in range(32)).encode())
        return body, {k: v.replace(BOUNDARY, boundary) for k, v in self.headers.items()}


def form_target(name: str, port: int, path: str, cookie: str, token: str, **kw: Any) -> Target:
    template = multipart(report_form_fields(token), BOUNDARY)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Cookie": cookie}
    return Target(name, port, "POST", path, headers, template, **kw)


# ---------------------------------------------------------------- load generators


def lua_string(data: bytes) -> str:
    out = []
    for byte in data:
        out.append(chr(byte) if 32 <= byte < 127 and byte not in (34, 92) else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\": %d, \"duration_us\": %d, \"status_errors\": %d, \"connect\": %d, " ..
    "\"read\": %d, \"write\": %d, \"timeout\": %d, \"p50_us\": %d, \"p90_us\": %d, \"p95_us\": %d, " ..
    "\"p99_us\": %d, \"mean_us\": %.1f, \"max_us\": %d}\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.mean, latency.max))
end
"""


def wrk_script(target: Target, path: Path) -> Path:
    headers = ", ".join(f"[{lua_string(k.encode())}] = {lua_string(v.encode())}" for k, v in target.headers.items())
    has_body = "true" if target.template is not None else "false"
    script = f"""
local method = {lua_string(target.method.encode())}
local path = {lua_string(target.path.encode())}
local template = {lua_string(target.template or b"")}
local alnum = {lua_string(ALNUM.encode())}
local has_body = {has_body}
local threads = {{}}
offset = 0
local n = 0
setup = function(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end
init = function(args)
  n = offset
  math.randomseed({random.SystemRandom().randrange(2**31)} + offset)
end
request = function()
  n = n + 1
  local headers = {{ {headers} }}
  local body = nil
  if has_body then
    local chars = {{}}
    for i = 1, 16 do
      local k = math.random(1, #alnum)
      chars[i] = string.sub(alnum, k, k)
    end
    local boundary = "----WebKitFormBoundary" .. table.concat(chars)
    for i = 1, 32 do
      local k = math.random(1, #alnum)
      chars[i] = string.sub(alnum, k, k)
    end
    local submission = table.concat(chars)
    body = string.gsub(template, "@@B@@", boundary)
    body = string.gsub(body, "@@S@@", submission)
    body = string.gsub(body, "@@N@@", tostring(n % {OFFICERS}))
    for k, v in pairs(headers) do
      headers[k] = string.gsub(v, "@@B@@", boundary)
    end
  end
  return wrk.format(method, path, headers, body)
end
{WRK_DONE}
"""
    path.write_text(script)
    return path


def run_wrk(target: Target, seconds: float, connections: int, threads: int, work: Path) -> dict[str, Any]:
    script = wrk_script(target, work / ("wrk-" + re.sub(r"[^A-Za-z0-9]+", "-", target.name) + ".lua"))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "20s",
        "-s",
        str(script),
        f"http://{HOST}:{target.port}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}")
    raw = json.loads(line[len("WRKJSON ") :])
    seconds_taken = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    ok = raw["requests"] - raw["status_errors"]
    return {
        "tool": "wrk",
        "requests": raw["requests"],
        "ok": ok,
        "bad_status": raw["status_errors"],
        "socket_errors": errors,
        "seconds": seconds_taken,
        "rps": ok / seconds_taken if seconds_taken else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }


def _load_threads(
    target: Target, threads: int, seconds: float | None, count: int | None, offset: int
) -> dict[str, Any]:
    """Run `threads` keep-alive-capable http.client connections until the time or the count is spent."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    bad_marker = 0
    lock = threading.Lock()
    remaining = [count if count is not None else -1]
    start = time.perf_counter()
    deadline = start + seconds if seconds is not None else start + 3600  # a count run is bounded too

    def one(thread_no: int) -> None:
        nonlocal bad_marker
        conn = http.client.HTTPConnection(HOST, target.port, timeout=30)
        n = offset + thread_no * 7919
        rng = random.Random(os.urandom(16))  # fresh boundaries and submission tokens on every call
        try:
            while time.perf_counter() < deadline:
                if count is not None:
                    with lock:
                        if remaining[0] <= 0:
                            return
                        remaining[0] -= 1
                n += 1
                body, headers = target.render(n, rng)
                began = time.perf_counter()
                try:
                    # http.client reopens the connection itself when the server closed it (gunicorn's
                    # sync workers close after every response).
                    conn.request(target.method, target.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    status, data = 0, b""
                elapsed = time.perf_counter() - began
                with lock:
                    latencies.append(elapsed)
                    statuses[status] += 1
                    if target.expect_marker is not None and target.expect_marker not in data:
                        bad_marker += 1
        finally:
            conn.close()

    pool = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {
        "latencies": latencies,
        "statuses": dict(statuses),
        "bad_marker": bad_marker,
        "seconds": time.perf_counter() - start,
    }


def _load_process(args: tuple) -> dict[str, Any]:
    return _load_threads(*args)


def run_python_load(
    target: Target,
    connections: int,
    seconds: float | None = None,
    count: int | None = None,
    processes: int = 1,
) -> dict[str, Any]:
    """The Python load generator: `connections` threads, spread over `processes` processes."""
    processes = max(1, min(processes, connections))
    if processes == 1:
        parts = [_load_threads(target, connections, seconds, count, 0)]
    else:
        jobs = []
        for p in range(processes):
            threads = connections // processes + (1 if p < connections % processes else 0)
            share = None if count is None else count // processes + (1 if p < count % processes else 0)
            jobs.append((target, threads, seconds, share, p * 100003))
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            parts = pool.map(_load_process, jobs)
    latencies = sorted(x for part in parts for x in part["latencies"])
    statuses: Counter = Counter()
    for part in parts:
        statuses.update(part["statuses"])
    ok = statuses.get(target.expect_status, 0)
    taken = max(part["seconds"] for part in parts)
    return {
        "tool": f"python ({processes} process(es), http.client)",
        "requests": len(latencies),
        "ok": ok,
        "bad_status": len(latencies) - ok,
        "bad_marker": sum(part["bad_marker"] for part in parts),
        "statuses": {str(k): v for k, v in statuses.items()},
        "seconds": taken,
        "rps": ok / taken if taken else 0.0,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": (statistics.fmean(latencies) * 1000) if latencies else 0.0,
        "max_ms": (latencies[-1] * 1000) if latencies else 0.0,
    }


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * pct / 100
    low = int(k)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (k - low)


# ---------------------------------------------------------------- throwaway portal instances


@dataclass
class Instance:
    name: str
    folder: Path
    url: str
    app: Any = None

    def env(self) -> dict[str, str]:
        return {
            "PORTAL_INSTANCE": str(self.folder),
            "DATABASE_URL": self.url,
            # One load-generator address would be throttled at once; the limits are not what is measured.
            "RATELIMIT_ENABLED": "false",
            "RATELIMIT_STORAGE_URI": "memory://",
        }


def postgres_admin_url(url: str, database: str) -> str:
    """A libpq URL for psycopg from a SQLAlchemy one, pointing at another database."""
    base = url.replace("postgresql+psycopg://", "postgresql://").split("?", 1)[0]
    return base.rsplit("/", 1)[0] + "/" + database


def prepare_postgres(url: str, schemas: list[str]) -> None:
    import psycopg

    database = url.split("?", 1)[0].rsplit("/", 1)[1]
    with psycopg.connect(postgres_admin_url(url, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{database}"')
    with psycopg.connect(postgres_admin_url(url, database), autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{schema}"')


def drop_postgres_schemas(url: str, schemas: list[str]) -> None:
    import psycopg

    database = url.split("?", 1)[0].rsplit("/", 1)[1]
    with psycopg.connect(postgres_admin_url(url, database), autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def make_instance(name: str, work: Path, db: str, pg_url: str) -> Instance:
    """A fresh instance folder initialised by the real `flask portal init`, through the app's CLI runner."""
    from portal.web.app import create_app

    folder = work / name
    if db == "sqlite":
        url = "sqlite:///" + str(folder / "portal.db")
    else:
        url = pg_url + ("&" if "?" in pg_url else "?") + f"options=-csearch_path%3D{schema_of(name)}"
    app = create_app(
        {
            "PORTAL_INSTANCE": str(folder),
            "SQLALCHEMY_DATABASE_URI": url,
            "RATELIMIT_ENABLED": False,
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    result = app.test_cli_runner().invoke(
        args=["portal", "init", "--recovery-key-out", str(work / f"{name}-recovery.key")]
    )
    if result.exit_code != 0:
        raise BenchError(f"portal init for {name} failed: {result.output}")
    return Instance(name, folder, url, app)


def schema_of(name: str) -> str:
    return f"bench_{name}"


# ---------------------------------------------------------------- seeding realistic cases

FIRST = "Pat Sam Alex Jo Chris Sian Amir Priya Tom Grace Kwame Ewa Liam Mei Omar Ruth".split()
LAST = "Example Smith O'Neil-Smith Khan Patel Jones Nowak Okafor Williams Brown Chen Murphy".split()
WORDS = (
    "the sergeant constable inspector shift yard custody suite station van radio briefing probationer "
    "said shouted told asked refused laughed threatened pushed followed messaged again every night week "
    "in front of colleagues public complaint overtime course rota afraid upset report because when after "
    "before during without"
).split()


def random_text(rng: random.Random, low: int, high: int) -> str:
    length = rng.randint(low, high)
    words: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words).capitalize() + "."


def random_report(rng: random.Random, commands: list[str], full: bool = False) -> Any:
    """A plausible report. `full`: every optional field filled (for the drift check)."""
    import dataclasses

    from portal.core import routing
    from portal.domain import intake

    def some(p: float) -> bool:
        return full or rng.random() < p

    mode = "confidential" if full else rng.choice(("anonymous",) * 5 + ("confidential",) * 3 + ("named",) * 2)
    named = mode != "anonymous"
    values: dict[str, Any] = dict(
        mode=mode,
        category=rng.choice(list(routing.CATEGORIES)),
        summary=random_text(rng, 30, 180)[:200],
        details=random_text(rng, 200, 2500),
        subject_name=f"{rng.choice(FIRST)} {rng.choice(LAST)}" if some(0.6) else "",
        subject_staff_number=f"AB{rng.randrange(OFFICERS):05d}" if some(0.7) else "",
        subject_command=rng.choice(commands) if some(0.8) else None,
        occurred_on=date.today() - timedelta(days=rng.randint(1, 400)) if some(0.7) else None,
        location=random_text(rng, 10, 60) if some(0.6) else "",
        witnesses=random_text(rng, 10, 200) if some(0.4) else "",
        fear_of_reprisal=full or rng.random() < 0.15,
        reporter_name=f"{rng.choice(FIRST)} {rng.choice(LAST)}" if named else "",
        reporter_contact=f"reporter{rng.randrange(10**6)}@example.org" if named and some(0.7) else "",
    )
    if "submission_token" in {f.name for f in dataclasses.fields(intake.NewReport)}:
        values["submission_token"] = "".join(rng.choice(ALNUM) for _ in range(32))  # the form's one-time token
    return intake.NewReport(**values)


class Clock:
    """Received times spread evenly over this year so far, in order: reference years stay this year's."""

    def __init__(self, total: int) -> None:
        from portal.storage.models import utcnow

        self.now = utcnow()
        self.start = datetime(self.now.year, 1, 1, 0, 5)
        self.span = max((self.now - self.start).total_seconds() - 600, 1.0)
        self.total = max(total, 1)

    def at(self, i: int) -> datetime:
        return self.start + timedelta(seconds=self.span * i / self.total)


def seed_real(inst: Instance, count: int, rng: random.Random, clock: Clock, first: int, keep: int) -> list[str]:
    """Cases made by portal.domain.intake.submit_report itself, committed every 1,000. Returns `keep` receipts."""
    from sqlalchemy import select

    from portal.domain import intake
    from portal.storage.models import Command, db
    from portal.web.app import server_secrets

    receipts: list[str] = []
    every = max(count // keep, 1) if keep else count + 1
    with inst.app.app_context():
        secrets = server_secrets()
        settings = intake.IntakeSettings(
            inst.app.config["ACKNOWLEDGE_WITHIN_DAYS"], inst.app.config["UPDATE_EVERY_DAYS"]
        )
        commands = list(db.session.scalars(select(Command.code).where(Command.active)))
        for i in range(count):
            submitted = intake.submit_report(
                db.session, random_report(rng, commands), secrets, settings, now=clock.at(first + i)
            )
            if i % every == every // 2 and len(receipts) < keep:
                receipts.append(submitted.receipt)
            if i % 1000 == 999:
                db.session.commit()
        db.session.commit()
        db.session.remove()
    return receipts


@dataclass(frozen=True)
class Earlier:
    """What portal.domain.patterns.assess reads of an earlier concern."""

    received_at: datetime
    category: str


class RowBuilder:
    """The rows portal.domain.intake.submit_report makes, built with the portal's own sealing, routing and clock
    functions, for inserting 1,000 at a time with executemany instead of ORM flushes (~10x faster).

    Per case: the row of portal.domain.new_cases, as intake makes it (new_case_row, then seal_row: a fresh
    data key, the content fields sealed under it, the key wrapped to the routed queue, to the recovery key
    and under the receipt's key); the receipt's HMAC index; the submission token's index; blind indexes of the
    subject; the early-intervention flags of portal.domain.patterns over the person's earlier concerns; routing by
    the stored rules with the true count of earlier concerns and the flags; the clocks; the
    reference; a 'received' event. drift_check() compares a built row with one submit_report makes,
    and the status phase opens built cases over HTTP with their receipts.
    """

    def __init__(self, session: Any) -> None:
        from flask import current_app
        from sqlalchemy import select

        from portal.domain import intake, patterns
        from portal.storage.models import Command, Queue, Report
        from portal.web.app import server_secrets

        self.secrets = server_secrets()
        self.settings = intake.IntakeSettings(
            current_app.config["ACKNOWLEDGE_WITHIN_DAYS"], current_app.config["UPDATE_EVERY_DAYS"]
        )
        self.queues = {q.code: q for q in session.scalars(select(Queue)).all()}
        self.rules = intake.load_rules(session)
        self.commands = list(session.scalars(select(Command.code).where(Command.active)))
        # Earlier concerns per person (received, category), as portal.domain.patterns.concerns_about reads them:
        # by staff number when the new report gives one, else by name. Held reports are not concerns.
        self.by_staff: dict[bytes, list[Any]] = defaultdict(list)
        self.by_name: dict[bytes, list[Any]] = defaultdict(list)
        for staff, name, received, category in session.execute(
            select(Report.subject_staff_index, Report.subject_name_index, Report.received_at, Report.category).where(
                Report.held.is_(False)
            )
        ):
            if staff is not None:
                self.by_staff[staff].append(Earlier(received, category))
            if name is not None:
                self.by_name[name].append(Earlier(received, category))
        self.pattern_rules = patterns.load_rules(session)

    def build(self, new: Any, now: datetime, reference: str) -> tuple[dict[str, Any], dict[str, Any], str]:
        from portal.core import crypto, routing, workflow
        from portal.domain import intake, new_cases, patterns

        secrets = self.secrets
        if new.mode == "anonymous":
            new.reporter_name = new.reporter_contact = ""
        staff_index = crypto.staff_number_index(secrets.blind_index_key, new.subject_staff_number)
        name_index = crypto.name_index(secrets.blind_index_key, new.subject_name)
        if staff_index is not None:
            earlier = self.by_staff[staff_index]
        elif name_index is not None:
            earlier = self.by_name[name_index]
        else:
            earlier = []
        flags = patterns.assess(sorted(earlier, key=lambda concern: concern.received_at), now, self.pattern_rules)
        facts = routing.ReportFacts(
            new.category, new.subject_command, new.fear_of_reprisal, len(earlier), pattern_flagged=bool(flags)
        )
        decision = routing.route_report(facts, self.rules, self.queues)
        clocks = workflow.intake_clocks(now, self.settings.acknowledge_within_days, self.settings.update_every_days)
        queue = self.queues[decision.queue]
        row = new_cases.new_case_row(
            reference=reference,
            received_at=now,
            mode=new.mode,
            category=new.category,
            queue_id=queue.id,
            source="portal",
            acknowledge_due_at=clocks.acknowledge_due_at,
            next_update_due_at=clocks.next_update_due_at,
            routing_reasons=decision.reasons,
            fear_of_reprisal=new.fear_of_reprisal,
            reporter_wants_email=new.wants_email_updates and new.mode != "anonymous" and "@" in new.reporter_contact,
            subject_command=new.subject_command or None,
            subject_staff_index=staff_index,
            subject_name_index=name_index,
            earlier_concerns=len(earlier),
            pattern_flags=flags,
            submission_index=intake.submission_index(secrets, new.submission_token),
        )
        receipt = crypto.generate_receipt()
        normalised = crypto.normalise_receipt(receipt)
        assert normalised is not None
        row["receipt_index"] = crypto.receipt_lookup_index(secrets.receipt_pepper, normalised)
        new_cases.seal_row(
            row,
            intake.report_values(new),
            queue,
            secrets.recovery_public_key,
            generation=queue.key_generation,
            receipt=normalised,
        )
        if staff_index is not None:
            self.by_staff[staff_index].append(Earlier(now, new.category))
        if name_index is not None:
            self.by_name[name_index].append(Earlier(now, new.category))
        return row, new_cases.received_event(row["id"], now), receipt


def drift_check(inst: Instance, rng: random.Random) -> list[str]:
    """Columns that portal.domain.intake.submit_report fills but RowBuilder leaves empty, or the other way round,
    for the same fully filled report. Empty when the bulk rows are like real ones. Rolled back."""
    import copy

    from sqlalchemy import select

    from portal.domain import intake, new_cases
    from portal.storage.models import Report, db, utcnow

    with inst.app.app_context():
        session = db.session
        builder = RowBuilder(session)
        new = random_report(rng, builder.commands, full=True)
        # Two earlier concerns about the same person, so that the counts, the early-intervention flags
        # and the routing they drive are compared too, not only a first concern's.
        for n in range(2):
            prior = copy.deepcopy(new)
            prior.submission_token = f"{new.submission_token}-earlier-{n}"
            intake.submit_report(session, prior, builder.secrets, builder.settings, now=utcnow())
        session.flush()
        builder = RowBuilder(session)
        twin = copy.deepcopy(new)
        submitted = intake.submit_report(session, new, builder.secrets, builder.settings, now=utcnow())
        session.flush()
        real = session.execute(select(Report.__table__).where(Report.id == submitted.report.id)).mappings().one()
        row, _, _ = builder.build(twin, utcnow(), "CR-0000-000000")
        session.rollback()
        session.remove()
    problems = []
    unique = {"id", "reference", "receipt_index", "submission_index"}
    for key in new_cases.COLUMNS:
        mine, theirs = row[key], real[key]
        if (theirs is None) != (mine is None):
            problems.append(
                f"{key}: {'set' if theirs is not None else 'empty'} by submit_report, "
                f"{'set' if mine is not None else 'empty'} in bulk"
            )
        elif isinstance(theirs, bytes):
            if len(theirs) != len(mine):
                problems.append(f"{key}: {len(theirs)} bytes by submit_report, {len(mine)} in bulk")
        elif key not in unique and not isinstance(theirs, datetime) and theirs != mine:
            problems.append(f"{key}: {theirs!r} by submit_report, {mine!r} in bulk")
    return problems


def seed_bulk(inst: Instance, count: int, rng: random.Random, clock: Clock, first: int, keep: int) -> list[str]:
    """`count` cases by RowBuilder, 1,000 per transaction, with references taken from the counter."""
    from sqlalchemy import insert

    from portal.domain import new_cases
    from portal.storage.models import CaseEvent, Report, db

    receipts: list[str] = []
    every = max(count // keep, 1) if keep else count + 1
    with inst.app.app_context():
        session = db.session
        builder = RowBuilder(session)
        done = 0
        started = time.monotonic()
        while done < count:
            batch = min(1000, count - done)
            year = clock.at(first + done).year
            sequence = new_cases.reserve_references(session, year, batch)
            rows, events = [], []
            for j in range(batch):
                new = random_report(rng, builder.commands)
                reference = new_cases.format_reference(year, sequence + j)
                row, event, receipt = builder.build(new, clock.at(first + done + j), reference)
                rows.append(row)
                events.append(event)
                if (done + j) % every == every // 2 and len(receipts) < keep:
                    receipts.append(receipt)
            session.execute(insert(Report.__table__), rows)
            session.execute(insert(CaseEvent.__table__), events)
            session.commit()
            done += batch
            if done % 10000 == 0 or done == count:
                rate = done / max(time.monotonic() - started, 1e-9)
                log(f"  {inst.name}: {done:,}/{count:,} bulk cases ({rate:,.0f}/s)")
        session.remove()
    return receipts


def count_reports(inst: Instance) -> int:
    from sqlalchemy import func, select

    from portal.storage.models import Report, db

    with inst.app.app_context():
        n = db.session.scalar(select(func.count()).select_from(Report)) or 0
        db.session.remove()
        return n


def analyze(inst: Instance) -> None:
    """PostgreSQL: refresh planner statistics after a bulk load, as autovacuum soon would."""
    from sqlalchemy import text

    from portal.storage.models import db

    with inst.app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        db.session.remove()


def dispose(inst: Instance) -> None:
    from portal.storage.models import db

    with inst.app.app_context():
        db.session.remove()
        db.engine.dispose()


# ---------------------------------------------------------------- (b) status look-ups


def lookup_query_timing(instances: list[Instance], receipts: dict[str, list[str]], rounds: int) -> dict[str, Any]:
    """The look-up of portal.domain.reporter_access.unlock alone (HMAC + SELECT), in process, interleaved; and
    the database's plan for it."""
    from sqlalchemy import select, text

    from portal.core import crypto
    from portal.storage.models import Report, db
    from portal.web.app import server_secrets

    timings: dict[str, dict[str, list[float]]] = {i.name: {"valid": [], "wrong": []} for i in instances}
    plans: dict[str, str] = {}
    sql = "SELECT reports.id, reports.dek_for_receipt FROM reports WHERE reports.receipt_index = :idx"
    for inst in instances:
        with inst.app.app_context():
            pepper = server_secrets().receipt_pepper
            index = crypto.receipt_lookup_index(pepper, crypto.normalise_receipt(receipts[inst.name][0]) or "")
            if db.engine.dialect.name == "sqlite":
                rows = db.session.execute(text("EXPLAIN QUERY PLAN " + sql), {"idx": index})
                plans[inst.name] = "; ".join(str(r[-1]) for r in rows)
            else:
                rows = db.session.execute(text("EXPLAIN " + sql), {"idx": index})
                plans[inst.name] = "; ".join(str(r[0]).strip() for r in rows)
            db.session.remove()
    for i in range(rounds):
        order = instances if i % 2 == 0 else list(reversed(instances))
        for inst in order:
            with inst.app.app_context():
                pepper = server_secrets().receipt_pepper
                db.session.execute(text("SELECT 1"))  # check the connection out of the pool untimed
                for kind in ("valid", "wrong"):
                    if kind == "valid":
                        receipt = receipts[inst.name][i % len(receipts[inst.name])]
                    else:
                        receipt = crypto.generate_receipt()
                    began = time.perf_counter()
                    index = crypto.receipt_lookup_index(pepper, crypto.normalise_receipt(receipt) or "")
                    row = db.session.execute(
                        select(Report.id, Report.dek_for_receipt).where(Report.receipt_index == index)
                    ).first()
                    timings[inst.name][kind].append(time.perf_counter() - began)
                    if (row is None) != (kind == "wrong"):
                        raise BenchError(f"look-up query on {inst.name}: {kind} receipt gave {row}")
                db.session.remove()
    out: dict[str, Any] = {}
    for inst in instances:
        out[inst.name] = {"plan": plans[inst.name]}
        for kind, values in timings[inst.name].items():
            values.sort()
            out[inst.name][kind] = {
                "n": len(values),
                "p50_us": percentile(values, 50) * 1e6,
                "p95_us": percentile(values, 95) * 1e6,
            }
    return out


def status_latency(
    servers: dict[str, Server], receipts: dict[str, list[str]], lookups: int, warmup: int
) -> dict[str, Any]:
    """One client, one request at a time: POST /status valid (303) and wrong (400), instances interleaved."""
    from portal.core import crypto

    clients = {}
    for name, server in servers.items():
        cookie, token = session_and_token(server.port, "/status")
        clients[name] = (server.port, cookie, token)
    samples: dict[str, dict[str, list[float]]] = {name: {"valid": [], "wrong": []} for name in servers}
    unexpected: Counter = Counter()
    names = list(servers)
    conns = {name: http.client.HTTPConnection(HOST, servers[name].port, timeout=30) for name in names}
    try:
        for i in range(warmup + lookups):
            order = names if i % 2 == 0 else list(reversed(names))
            for name in order:
                port, cookie, token = clients[name]
                for kind in ("valid", "wrong"):
                    receipt = receipts[name][i % len(receipts[name])] if kind == "valid" else crypto.generate_receipt()
                    body = f"csrf_token={token}&receipt={receipt}".encode()
                    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
                    conn = conns[name]
                    began = time.perf_counter()
                    try:
                        conn.request("POST", "/status", body=body, headers=headers)
                        response = conn.getresponse()
                        response.read()
                        status = response.status
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        status = 0
                    elapsed = time.perf_counter() - began
                    expected = 303 if kind == "valid" else 400
                    if status != expected:
                        unexpected[f"{name} {kind} -> {status}"] += 1
                    elif i >= warmup:
                        samples[name][kind].append(elapsed)
    finally:
        for conn in conns.values():
            conn.close()
    out: dict[str, Any] = {"unexpected": dict(unexpected)}
    for name in names:
        out[name] = {}
        for kind, values in samples[name].items():
            values.sort()
            out[name][kind] = {
                "n": len(values),
                "p50_ms": percentile(values, 50) * 1000,
                "p95_ms": percentile(values, 95) * 1000,
                "mean_ms": statistics.fmean(values) * 1000 if values else float("nan"),
            }
    return out


def phase_status(args: argparse.Namespace, work: Path, results: dict[str, Any], _load: Instance | None) -> None:
    log(f"(b) status look-ups: instances with {args.small:,} and {args.large:,} cases")
    rng = random.Random(args.seed)
    small = make_instance("small", work, args.db, args.pg_url)
    large = make_instance("large", work, args.db, args.pg_url)
    keep = 100
    receipts: dict[str, list[str]] = {}
    began = time.monotonic()
    clock_small = Clock(args.small)
    receipts["small"] = seed_real(small, args.small, rng, clock_small, 0, keep)
    log(f"  small: {args.small:,} cases by submit_report in {time.monotonic() - began:.1f} s")
    clock_large = Clock(args.large)
    real_part = min(args.small, args.large)
    began = time.monotonic()
    receipts["large"] = seed_real(large, real_part, rng, clock_large, 0, keep // 2)
    log(f"  large: {real_part:,} cases by submit_report in {time.monotonic() - began:.1f} s")
    drift = drift_check(large, rng)
    bulk = args.seed_mode == "bulk" or (args.seed_mode == "auto" and not drift)
    if drift:
        log(f"  WARNING: bulk rows would differ from submit_report's: {drift}")
        if not bulk:
            log("  so every case is made by submit_report (slow); update RowBuilder in bench/bench_intake.py")
    began = time.monotonic()
    seed = seed_bulk if bulk else seed_real
    receipts["large"] += seed(large, args.large - real_part, rng, clock_large, real_part, keep // 2)
    seed_seconds = time.monotonic() - began
    log(f"  large: {args.large - real_part:,} {'bulk' if bulk else 'submit_report'} cases in {seed_seconds:.1f} s")
    for inst in (small, large):
        analyze(inst)
    counts = {inst.name: count_reports(inst) for inst in (small, large)}
    results["status"] = {
        "cases": counts,
        "seeding": {
            "small": f"{args.small} by portal.domain.intake.submit_report",
            "large": f"{real_part} by portal.domain.intake.submit_report + {args.large - real_part} "
            f"{'bulk' if bulk else 'by submit_report'} ({seed_seconds:.0f} s)",
        },
        "receipts_per_instance": {k: len(v) for k, v in receipts.items()},
        "drift": drift,
        "bulk": bulk,
    }
    log(f"  cases: {counts}; look-up query alone, in process")
    results["status"]["query"] = lookup_query_timing([small, large], receipts, rounds=args.query_rounds)
    for inst in (small, large):
        dispose(inst)
    servers = {
        inst.name: start_gunicorn(f"portal-{inst.name}", "wsgi:app", inst.env(), args.workers, work, "/healthz")
        for inst in (small, large)
    }
    try:
        log(f"  POST /status over HTTP: {args.lookups} valid + {args.lookups} wrong per instance, interleaved")
        results["status"]["http"] = status_latency(servers, receipts, args.lookups, warmup=40)
    finally:
        for server in servers.values():
            PROCESSES.stop(server)


# ---------------------------------------------------------------- (a) throughput and (c) memory


def phase_throughput(args: argparse.Namespace, work: Path, results: dict[str, Any], load: Instance | None) -> None:
    assert load is not None
    log("(a) throughput: bare Flask app vs portal submissions, same gunicorn settings, interleaved rounds")
    bare = start_gunicorn("bare", "bench.bare_app:app", load.env(), args.workers, work, "/healthz")
    portal = start_gunicorn("portal-load", "wsgi:app", load.env(), args.workers, work, "/healthz")
    try:
        cookie, token = session_and_token(portal.port, "/report")
        targets = [
            Target("bare GET /hello", bare.port, "GET", "/hello"),
            form_target("bare POST /form", bare.port, "/form", cookie, token),
            form_target("portal POST /report", portal.port, "/report", cookie, token, expect_marker=b'id="receipt"'),
            Target("portal GET /report", portal.port, "GET", "/report", {"Cookie": cookie}),
        ]
        use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
        if args.loadgen == "wrk" and not shutil.which("wrk"):
            raise BenchError("--loadgen wrk: wrk is not installed (apt-get install -y wrk)")

        def drive(target: Target, seconds: float) -> dict[str, Any]:
            if use_wrk:
                return run_wrk(target, seconds, args.connections, args.threads, work)
            return run_python_load(target, args.connections, seconds=seconds, processes=args.py_processes)

        # Check each target once by hand before loading it.
        for target in targets:
            body, headers = target.render(1, random.Random(os.urandom(16)))
            status, _, data = http_request(target.port, target.method, target.path, body, headers)
            if status != target.expect_status or (target.expect_marker and target.expect_marker not in data):
                raise BenchError(f"{target.name}: answered {status}; expected {target.expect_status}")
        log(f"  warm-up {args.warmup:.0f} s per target")
        for target in targets:
            drive(target, args.warmup)
        runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
        for round_no in range(args.rounds):
            order = targets if round_no % 2 == 0 else list(reversed(targets))
            for target in order:
                before = count_reports(load) if target.port == portal.port and target.method == "POST" else None
                run = drive(target, args.duration)
                if before is not None:
                    run["db_new_reports"] = count_reports(load) - before
                runs[target.name].append(run)
                log(
                    f"  round {round_no + 1}/{args.rounds} {target.name}: {run['rps']:.1f}/s ok, "
                    f"p50 {run['p50_ms']:.1f} ms, bad status {run['bad_status']}"
                )
        rss = {
            "bare workers MB": [round(vmrss_mb(p) or 0, 1) for p in worker_pids(bare.pid)],
            "portal workers MB": [round(vmrss_mb(p) or 0, 1) for p in worker_pids(portal.pid)],
        }
        summary = {}
        for name, values in runs.items():
            rates = sorted(v["rps"] for v in values)
            summary[name] = {
                "rps_median": statistics.median(rates),
                "rps_rounds": [round(r, 1) for r in (v["rps"] for v in values)],
                "p50_ms_median": statistics.median(v["p50_ms"] for v in values),
                "p95_ms_median": statistics.median(v["p95_ms"] for v in values),
                "bad_status_total": sum(v["bad_status"] for v in values),
                "socket_errors_total": sum(v.get("socket_errors", 0) for v in values),
            }
            if "db_new_reports" in values[0]:
                summary[name]["db_new_reports_total"] = sum(v["db_new_reports"] for v in values)
                summary[name]["ok_total"] = sum(v["ok"] for v in values)
        portal_rps = summary["portal POST /report"]["rps_median"]

        def per_round(bare_name: str) -> float:
            """Median over rounds of the ratio within a round: the runs of one round are seconds apart."""
            pairs = zip(runs["portal POST /report"], runs[bare_name], strict=True)
            return statistics.median(p["rps"] / b["rps"] for p, b in pairs if b["rps"])

        results["throughput"] = {
            "loadgen": runs[targets[0].name][0]["tool"],
            "connections": args.connections,
            "threads": args.threads if use_wrk else None,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "workers": len(worker_pids(portal.pid)),
            "summary": summary,
            "ratio_vs_bare_get": portal_rps / summary["bare GET /hello"]["rps_median"],
            "ratio_vs_bare_post": portal_rps / summary["bare POST /form"]["rps_median"],
            "ratio_per_round_vs_bare_get": per_round("bare GET /hello"),
            "ratio_per_round_vs_bare_post": per_round("bare POST /form"),
            "rss_after": rss,
            "runs": runs,
        }
    finally:
        PROCESSES.stop(bare)
        PROCESSES.stop(portal)


def phase_memory(args: argparse.Namespace, work: Path, results: dict[str, Any], load: Instance | None) -> None:
    assert load is not None
    workers = args.memory_workers
    log(f"(c) memory: {args.memory_submissions:,} submissions to gunicorn with {workers} worker(s)")
    server = start_gunicorn("portal-memory", "wsgi:app", load.env(), workers, work, "/healthz")
    try:
        cookie, token = session_and_token(server.port, "/report")
        target = form_target(
            "portal POST /report", server.port, "/report", cookie, token, expect_marker=b'id="receipt"'
        )
        body, headers = target.render(0, random.Random(os.urandom(16)))
        status, _, data = http_request(server.port, "POST", "/report", body, headers)
        if status != 200 or target.expect_marker not in data:
            raise BenchError(f"memory phase: a submission answered {status} without a receipt")
        pids = worker_pids(server.pid)
        samples = [{"submissions": 0, "rss_mb": {str(p): vmrss_mb(p) for p in pids}}]
        chunk = max(args.memory_submissions // 10, 1)
        sent = 0
        ok = bad = 0
        began = time.monotonic()
        while sent < args.memory_submissions:
            n = min(chunk, args.memory_submissions - sent)
            run = run_python_load(target, args.memory_connections, count=n)
            ok += run["ok"] - run["bad_marker"]
            bad += run["bad_status"] + run["bad_marker"]
            sent += n
            samples.append({"submissions": sent, "rss_mb": {str(p): vmrss_mb(p) for p in worker_pids(server.pid)}})
            last = samples[-1]["rss_mb"]
            rss = ", ".join(f"{v:.1f} MB" for v in last.values() if v)
            if run["ok"] - run["bad_marker"] <= 0:
                raise BenchError(f"memory phase: no submission of the last {n} succeeded: {run['statuses']}")
            log(f"  {sent:,} sent ({bad} bad, statuses {run['statuses']}): RSS {rss}")
        final = worker_pids(server.pid)
        results["memory"] = {
            "workers": workers,
            "submissions": sent,
            "ok": ok,
            "bad": bad,
            "seconds": time.monotonic() - began,
            "worker_pids_start": pids,
            "worker_pids_end": final,
            "master_rss_mb": vmrss_mb(server.pid),
            "samples": samples,
            "max_worker_rss_mb": max(v for v in samples[-1]["rss_mb"].values() if v is not None),
        }
    finally:
        PROCESSES.stop(server)


# ---------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def markdown(results: dict[str, Any]) -> str:
    lines = [f"## {results['db']} ({results['started']}; code: {results['code']})", ""]
    machine = results["machine"]
    lines.append(
        f"Machine: {machine['nproc']} cores, Python {machine['python']}, {machine['platform']}; "
        f"gunicorn {machine['gunicorn']}, wrk: {machine['wrk'] or 'not installed'}. "
        f"Run took {results.get('seconds', 0):.0f} s."
    )
    if results.get("loadavg"):
        loads = "; ".join(
            f"{name} {v['before'][0]:.1f} -> {v['after'][0]:.1f}" for name, v in results["loadavg"].items()
        )
        lines += [
            "",
            f"1-minute load average before -> after each phase (other work on the machine shows here): {loads}.",
        ]
    lines.append("")
    if "throughput" in results:
        t = results["throughput"]
        lines += [
            f"### (a) Throughput: {t['loadgen']}, {t['connections']} connections"
            + (f", {t['threads']} threads" if t["threads"] else "")
            + f", {t['rounds']} rounds x {t['duration_s']:.0f} s, {t['workers']} gunicorn workers each",
            "",
            "| target | req/s (median of rounds) | rounds | p50 ms | p95 ms | non-2xx | socket errors |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for name, s in t["summary"].items():
            lines.append(
                f"| {name} | {s['rps_median']:.1f} | {', '.join(f'{r:.0f}' for r in s['rps_rounds'])} | "
                f"{s['p50_ms_median']:.1f} | {s['p95_ms_median']:.1f} | {s['bad_status_total']} | "
                f"{s['socket_errors_total']} |"
            )
        sub = t["summary"]["portal POST /report"]
        lines += [
            "",
            f"Reports written by the portal during the measured runs: {sub.get('db_new_reports_total')} "
            f"(load generator counted {sub.get('ok_total')} successful submissions).",
            "",
            f"- submissions/s vs bare GET /hello: **{t['ratio_vs_bare_get']:.0%}** (median of the ratios "
            f"within each round: {t['ratio_per_round_vs_bare_get']:.0%}) "
            f"-> {verdict(t['ratio_vs_bare_get'] >= 0.40)} (target >= 40%)",
            f"- submissions/s vs bare POST /form: **{t['ratio_vs_bare_post']:.0%}** (within rounds: "
            f"{t['ratio_per_round_vs_bare_post']:.0%}) -> {verdict(t['ratio_vs_bare_post'] >= 0.40)} (target >= 40%)",
            f"- worker RSS after the runs: bare {t['rss_after']['bare workers MB']} MB, "
            f"portal {t['rss_after']['portal workers MB']} MB",
            "",
        ]
    if "status" in results:
        s = results["status"]
        h = s["http"]
        lines += [
            f"### (b) Status look-up, cases: {s['cases']}",
            "",
            f"Seeding: small = {s['seeding']['small']}; large = {s['seeding']['large']}. "
            + (
                "Bulk rows checked against submit_report's for the same input: same columns filled, same "
                "sizes, same clear values."
                if not s["drift"]
                else f"**Bulk rows differ from submit_report's: {s['drift']}**"
                if s["bulk"]
                else f"The bulk builder is out of date ({s['drift']}), so every case was made by submit_report."
            ),
            "",
            "| POST /status over HTTP | cases | n | p50 ms | p95 ms | mean ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for kind in ("valid", "wrong"):
            for name in ("small", "large"):
                v = h[name][kind]
                label = "valid receipt (303)" if kind == "valid" else "wrong receipt (400)"
                lines.append(
                    f"| {label} | {s['cases'][name]:,} | {v['n']} | {v['p50_ms']:.2f} | {v['p95_ms']:.2f} | "
                    f"{v['mean_ms']:.2f} |"
                )
        lines.append("")
        if h["unexpected"]:
            lines.append(f"Unexpected answers: {h['unexpected']}")
            lines.append("")
        for kind in ("valid", "wrong"):
            ratio = h["large"][kind]["p50_ms"] / h["small"][kind]["p50_ms"]
            lines.append(
                f"- {kind} receipt, median at {s['cases']['large']:,} / at {s['cases']['small']:,}: "
                f"**{ratio:.3f}** -> {verdict(ratio <= 1.10)} (target <= 1.10)"
            )
        q = s["query"]
        lines += [
            "",
            "| look-up query alone (in process, HMAC + SELECT) | cases | p50 us | p95 us |",
            "| --- | ---: | ---: | ---: |",
        ]
        for kind in ("valid", "wrong"):
            for name in ("small", "large"):
                v = q[name][kind]
                lines.append(f"| {kind} | {s['cases'][name]:,} | {v['p50_us']:.0f} | {v['p95_us']:.0f} |")
        lines += ["", f"Query plan at {s['cases']['large']:,} cases: `{q['large']['plan']}`", ""]
    if "memory" in results:
        m = results["memory"]
        first = m["samples"][1] if len(m["samples"]) > 1 else m["samples"][0]
        lines += [
            f"### (c) Worker memory: {m['submissions']:,} submissions to {m['workers']} worker(s) "
            f"({m['ok']:,} ok, {m['bad']} bad, {m['seconds']:.0f} s)",
            "",
            "| submissions | worker VmRSS MB |",
            "| ---: | --- |",
        ]
        for sample in m["samples"]:
            values = ", ".join(f"{v:.1f}" for v in sample["rss_mb"].values() if v is not None)
            lines.append(f"| {sample['submissions']:,} | {values} |")
        growth = m["max_worker_rss_mb"] - max(v for v in first["rss_mb"].values() if v is not None)
        lines += [
            "",
            f"- max worker RSS after {m['submissions']:,}: **{m['max_worker_rss_mb']:.1f} MB** "
            f"-> {verdict(m['max_worker_rss_mb'] < 150)} (target < 150 MB); growth after the first "
            f"{first['submissions']:,}: {growth:+.1f} MB; worker restarted: "
            f"{'yes' if m['worker_pids_start'] != m['worker_pids_end'] else 'no'}; master RSS "
            f"{m['master_rss_mb']:.1f} MB",
            "",
        ]
    return "\n".join(lines)


def code_version(label: str | None) -> str:
    """Which code was measured: --label, else the commit and whether the work tree had changes."""
    if label:
        return label
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + (" + uncommitted changes" if dirty else "")


def machine_info() -> dict[str, Any]:
    import gunicorn

    wrk = shutil.which("wrk")
    wrk_version = None
    if wrk:
        done = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10, check=False)
        wrk_version = (done.stdout or done.stderr).split(" Copyright")[0].strip()
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gunicorn": gunicorn.__version__,
        "wrk": wrk_version,
    }


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--pg-url", default=DEFAULT_PG, help="SQLAlchemy URL of a database the bench may use")
    p.add_argument("--phases", default="throughput,status,memory", help="comma list of throughput,status,memory")
    p.add_argument("--workers", type=int, default=None, help="gunicorn workers [gunicorn.conf.py: 2 x cores]")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto", help="auto: wrk if installed")
    p.add_argument("--connections", type=int, default=8, help="concurrent connections for (a)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads for (a)")
    p.add_argument("--py-processes", type=int, default=2, help="processes of the Python load generator")
    p.add_argument("--duration", type=float, default=6.0, help="seconds per measured run in (a)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per target in (a)")
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds in (a)")
    p.add_argument("--small", type=int, default=1000, help="cases in the small instance for (b)")
    p.add_argument("--large", type=int, default=100000, help="cases in the large instance for (b)")
    p.add_argument("--lookups", type=int, default=500, help="valid and wrong look-ups per instance in (b)")
    p.add_argument("--query-rounds", type=int, default=2000, help="in-process look-up queries in (b)")
    p.add_argument("--memory-submissions", type=int, default=10000)
    p.add_argument("--memory-workers", type=int, default=1, help="workers for (c): 1 = one serves them all")
    p.add_argument("--memory-connections", type=int, default=2)
    p.add_argument("--seed", type=int, default=20260314)
    p.add_argument("--json", type=Path, help="write the raw results here")
    p.add_argument("--markdown", type=Path, help="write the summary tables here")
    p.add_argument(
        "--seed-mode",
        choices=("auto", "bulk", "real"),
        default="auto",
        help="how the large instance is filled past --small cases: bulk rows (fast), submit_report (slow), "
        "or auto: bulk if its rows match submit_report's for the same input",
    )
    p.add_argument("--label", help="what code is measured, for the report [git commit of this tree]")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (and PostgreSQL schemas)")
    p.add_argument("--time-limit", type=int, default=1200, help="end the whole run after this many seconds")
    args = p.parse_args(argv)
    args.phase_list = [x.strip() for x in args.phases.split(",") if x.strip()]
    unknown = set(args.phase_list) - {"throughput", "status", "memory"}
    if unknown:
        p.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.large < args.small:
        p.error("--large must be at least --small")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in SECRET_VARIABLES + ("DATABASE_URL",):
        os.environ.pop(name, None)

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"--time-limit of {args.time_limit} s reached")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.time_limit)

    import portal

    if not Path(portal.__file__).resolve().is_relative_to(ROOT):
        print(f"portal is imported from {portal.__file__}, not from {ROOT}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    schemas = [schema_of(n) for n in ("small", "large", "load")]
    results: dict[str, Any] = {
        "db": args.db,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(),
        "code": code_version(args.label),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    began = time.monotonic()
    status = 0
    try:
        if args.db == "postgresql":
            prepare_postgres(args.pg_url, schemas)
        log(f"work folder {work}; database {args.db}")
        load = None
        if "throughput" in args.phase_list or "memory" in args.phase_list:
            load = make_instance("load", work, args.db, args.pg_url)
            dispose(load)
        phases = {"throughput": phase_throughput, "status": phase_status, "memory": phase_memory}
        for name, phase in phases.items():
            if name in args.phase_list:
                load_before = os.getloadavg()
                phase(args, work, results, load)
                results.setdefault("loadavg", {})[name] = {"before": load_before, "after": os.getloadavg()}
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - reported, and everything is stopped
        log(f"benchmark stopped: {exc!r}")
        if not isinstance(exc, (BenchError, TimeoutError, KeyboardInterrupt)):
            traceback.print_exc()
        results["error"] = repr(exc)
        status = 1
    finally:
        signal.alarm(0)
        PROCESSES.stop_all()
        results["seconds"] = time.monotonic() - began
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            if args.db == "postgresql":
                try:
                    drop_postgres_schemas(args.pg_url, schemas)
                except Exception as exc:  # noqa: BLE001 - cleanup must not hide the result
                    log(f"could not drop schemas: {exc}")
    text = markdown(results) if "error" not in results else json.dumps(results, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if args.markdown and "error" not in results:
        args.markdown.write_text(text + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
