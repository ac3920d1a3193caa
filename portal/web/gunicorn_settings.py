"""gunicorn settings: threaded workers that a handful of slow clients cannot starve, and an access log without
the client's address or user agent.

Part of the package so that an installed wheel serves with them: `gunicorn -c python:portal.web.gunicorn_settings
wsgi:app`. In a checkout, gunicorn.conf.py reads them from here (`gunicorn -c gunicorn.conf.py wsgi:app`).

Slow clients. gunicorn's `gthread` worker reads a request in one of its threads, and once the first bytes have
arrived it waits on the socket with no time limit of its own: a client that sends its headers one line every
few seconds (slowloris) holds a thread for as long as it likes, and WORKERS x THREADS such clients hold them
all (measured: 50 such clients, 2 workers x 4 threads, a normal request timed out after 20 s). gunicorn's
`timeout` does not help (in gthread it is the worker's heartbeat, not a request's), nor does `keepalive` (idle
connections between requests). So the worker below (PortalThreadWorker) takes a request's head as its bytes
come, without waiting, and hands the connection to a thread only once the head is complete; a head not complete
HEAD_TIMEOUT s after its first byte closes the connection, and a thread's later reads and writes (the body, the
response) wait READ_TIMEOUT s at most. A slow *body* still holds a thread while it trickles in (up to
READ_TIMEOUT per read): what protects a deployment from that is the buffering reverse proxy in front (README,
"Deployment"; deploy/nginx.conf), which takes whole requests from slow clients at its own pace and hands
gunicorn only complete ones.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from typing import Any

from gunicorn.workers import gthread
from gunicorn.workers.gthread import ThreadWorker

# gthread's answer for "no data yet: back to the poller" (gunicorn 24+); without it the worker is plain gthread.
_DEFER = getattr(gthread, "_DEFER", None)

HEAD_TIMEOUT = float(os.environ.get("PORTAL_HEAD_TIMEOUT", 10))
READ_TIMEOUT = float(os.environ.get("PORTAL_READ_TIMEOUT", 30))
MAX_HEAD = 512 * 1024  # above what the limit_request_* below allow: a longer head goes to the parser to refuse

bind = os.environ.get("PORTAL_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
# Threads: a request mostly waits (on the database, on a client's body); 8 threads keep a worker's core busy
# without queueing. Each thread holds at most one database connection, so the app sizes its pool to match
# (PORTAL_DB_POOL_SIZE, read by create_app): WORKERS x THREADS must stay under PostgreSQL's max_connections.
threads = int(os.environ.get("PORTAL_THREADS", 8))
os.environ.setdefault("PORTAL_DB_POOL_SIZE", str(threads))
worker_connections = 1000
# gthread's heartbeat: a worker whose main loop is stuck this long is restarted (requests run in threads).
timeout = 30
graceful_timeout = 30
keepalive = 5  # an idle kept-alive connection waits in the poller, holding no thread, for this long
# The request line and headers: as small as the portal needs (no route has a long URL or many headers).
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190

accesslog = "-"
# Request line, status, size and time: no %(h)s (address) and no %(a)s (user agent).
access_log_format = '"%(r)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket is one path per user: several instances on one host would fight over it.
control_socket_disable = True


class TimedSocket(socket.socket):
    """A client connection whose reads and writes, once a thread serves it, wait READ_TIMEOUT s at most."""

    def setblocking(self, flag: bool) -> None:
        if self.fileno() < 0:
            return  # closed by PortalThreadWorker.handle: gthread's graceful close has nothing left to do
        # gthread makes the socket blocking for the thread that serves it: blocking with a limit instead.
        if flag:
            self.settimeout(READ_TIMEOUT)
        else:
            super().setblocking(False)


class _TimedListener:
    def __init__(self, listener: Any) -> None:
        self.listener = listener

    def accept(self) -> tuple[TimedSocket, Any]:
        client, address = self.listener.accept()
        return TimedSocket(client.family, client.type, client.proto, fileno=client.detach()), address

    def getsockname(self) -> Any:
        return self.listener.getsockname()


class PortalThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, which hands a connection to a thread only once its request head is in.

    Until then the head's bytes are taken as they come, without waiting, and the connection goes back to the
    worker's poller (gthread's own "deferred" connections), holding no thread: slow clients cost a little
    memory, not a thread. A head not complete within HEAD_TIMEOUT s of its first byte closes the connection.
    Not for TLS or HTTP/2 served by gunicorn itself (those go to gthread unchanged): the proxy terminates TLS.
    """

    def accept(self, listener: Any) -> None:
        super().accept(_TimedListener(listener))

    def handle(self, conn: Any) -> Any:
        if _DEFER is None or self.cfg.is_ssl or conn.is_http2:
            return super().handle(conn)
        parser = conn.parser
        if parser is not None and parser.unreader.buf.getvalue():
            return super().handle(conn)  # a pipelined request is already read
        state = _head_state(conn)
        if state is False:
            # Closed here, at once: gthread's graceful close lingers up to 2 s for the client to close its
            # side, in the worker's main loop, where a slow client would stall every connection.
            conn.sock.close()
        if state is not True:
            return state
        conn.init()  # the parser, which reads the head from what was taken first
        conn.parser.unreader.unread(conn.portal_head)
        conn.portal_head, conn.portal_head_started = b"", None
        conn.data_ready = True
        return super().handle(conn)


def _head_state(conn: Any) -> Any:
    """True: the head is in (or too long: the parser refuses it). False: close. _DEFER: wait for more."""
    now = time.monotonic()
    head = getattr(conn, "portal_head", b"")
    started = getattr(conn, "portal_head_started", None) or now
    conn.sock.setblocking(False)
    try:
        while True:
            chunk = conn.sock.recv(65536)
            if not chunk:
                return False  # the client closed the connection
            head += chunk
            if _complete(head) or len(head) > MAX_HEAD:
                break
    except BlockingIOError:
        pass
    except OSError:
        return False
    conn.portal_head, conn.portal_head_started = head, started
    if _complete(head) or len(head) > MAX_HEAD:
        return True
    return False if now - started > HEAD_TIMEOUT else _DEFER


def _complete(head: bytes) -> bool:
    return b"\n\r\n" in head or b"\n\n" in head


worker_class = PortalThreadWorker
