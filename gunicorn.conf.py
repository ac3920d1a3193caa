"""gunicorn settings: an access log without the client's address or user agent."""

import multiprocessing
import os

bind = os.environ.get("PORTAL_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
worker_class = "sync"
timeout = 60
accesslog = "-"
# Request line, status, size and time: no %(h)s (address) and no %(a)s (user agent).
access_log_format = '"%(r)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket is one path per user: several instances on one host would fight over it.
control_socket_disable = True
