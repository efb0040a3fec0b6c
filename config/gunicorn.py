"""gunicorn settings for the Procfile's ``web:`` process (and the benchmark, which uses this file).

Threaded workers: a webhook request spends most of its time waiting on Redis round trips, so a few
threads per process keep both cores busy. Override with WEB_CONCURRENCY / WEB_THREADS / PORT.
"""

import multiprocessing
import os

bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count())))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30  # seconds; a request never calls the Graph API, so anything near this is a fault
graceful_timeout = 10
# No keep-alive: a gthread worker keeps every connection it accepted, so a few persistent senders
# (Meta, a proxy, the benchmark) would all land on one process; closing after each answer spreads them.
keepalive = 0
accesslog = None  # access lines would carry nothing useful and cost time; the app logs per batch
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn 27 opens a control socket at one fixed path per user (~/.gunicorn/gunicorn.ctl), shared by
# every gunicorn on the machine (dev server, tests, benchmark); we do not use it, so we do not open it.
control_socket_disable = True
