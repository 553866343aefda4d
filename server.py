"""The production server: gunicorn, one pre-forked worker per core around ``api.create_app``.

The app is built once in the master (model, catalogue, moment detector), then forked: workers share its memory
until they write to it, and map the same vector files. After the fork each worker opens its own SQLite connections
and follows the store's change log, so a write through any worker (or the CLI) reaches all of them. One writer at
a time, across workers: ``matcher.locking.ProcessLock``.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
import signal
import socket
import socketserver
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask
from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.http.errors import ParseException

from matcher.errors import IncompleteBodyError

logger = logging.getLogger("relais.server")
FOLLOW_EVERY_S = 0.2  # how often an idle worker looks for writes (a request looks at once)


class Server(BaseApplication):
    """gunicorn, configured from code rather than a file."""

    def __init__(self, app: Flask, options: Mapping[str, Any]):
        self.application = app
        self.options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def serve(app: Flask, host: str, port: int, workers: int, threads: int, health_port: int | None = None) -> None:
    """Serve ``app`` until stopped (SIGTERM or SIGINT: requests under way are finished first). ``health_port``: a
    liveness answer outside the request queue (``_serve_liveness``)."""
    engine = app.extensions["relais"]
    app.register_error_handler(ParseException, _broken_body)
    share = max(1, (os.cpu_count() or 1) // workers)  # threads for each worker's encoders and BLAS
    engine.before_fork(share)
    # What the master built (catalogue, caches, the app) is never garbage: out of the collector's sight, a full
    # collection no longer walks it (101 ms on fixtures + youtube-fr, in the middle of some request), and pages
    # the collector would have written to stay shared with the master (POST /v1/match p99: 185 then 91 ms, one
    # pair of runs).
    gc.collect()
    gc.freeze()
    _give_back_free_memory()

    def post_fork(server: Any, worker: Any) -> None:
        # Until gunicorn installs the worker's own handlers, a SIGTERM would reach the master's, inherited, and be
        # lost: a worker stopped while it starts would then hold the shutdown for the whole graceful timeout.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        engine.after_fork(share)
        beat = _Heartbeat()
        threading.Thread(target=_follow, args=(engine, beat), name="relais-follow", daemon=True).start()
        if health_port is not None:
            threading.Thread(
                target=_serve_liveness, args=(host, health_port, beat), name="relais-liveness", daemon=True
            ).start()

    def worker_exit(server: Any, worker: Any) -> None:
        # The worker has served its last request. Write what it served, then end without the interpreter's
        # teardown: C++ libraries' static destructors aborted stopping workers (SIGABRT, "std::system_error:
        # Invalid argument") in half the stops measured, before this change and since; with _exit, in none of 4.
        # Nothing is left to finish: SQLite has committed every write, and the log is flushed here.
        engine.close()
        logging.shutdown()
        os._exit(0)

    Server(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "preload_app": True,
            "keepalive": 30,  # load balancers and CDNs keep connections open
            "limit_request_line": 8190,  # the most gunicorn allows: a GET /v1/match with a long query fits
            "graceful_timeout": 30,
            "timeout": 120,
            "accesslog": None,  # the app logs one JSON line per request
            "errorlog": "-",
            "loglevel": "warning",
            "post_fork": post_fork,
            "worker_exit": worker_exit,
            "proc_name": "relais",
        },
    ).run()


def _broken_body(e: ParseException) -> Any:
    """gunicorn raises its own errors while the app reads a body whose chunked encoding is broken (a bad chunk
    size, a chunk without its CRLF): the client's fault, a 400 in the API's shape, not a 500 (bench/hostile.py)."""
    from api import error

    refused = IncompleteBodyError(
        f"The request body's chunked encoding is broken ({type(e).__name__}): nothing was done."
    )
    return error(refused.status, refused.code, refused.message)


def _give_back_free_memory() -> None:
    """Return to the system the heap that loading freed (decoded rows, token lists: glibc keeps it otherwise), so
    that workers do not start with it: at instagram-kim scale, 260 MB of each worker's resident memory."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _write_json_error(sock: Any, status: int, reason: str, message: str) -> None:
    """gunicorn answers requests it cannot parse (a request line over 8 KB: 414, a bad header: 400, 431) before the
    app sees them: in the API's error shape, not an HTML page."""
    body = json.dumps(
        {"error": {"status": status, "code": reason.lower().replace(" ", "_").replace("-", "_"), "message": message}}
    ).encode()
    head = f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
    util.write_nonblock(sock, head.encode("latin1") + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


util.write_error = _write_json_error  # what gunicorn's workers call for those answers


class _Heartbeat:
    """When this worker last caught up with the store (its follower does five times a second when idle)."""

    def __init__(self) -> None:
        self.at = time.monotonic()

    def beat(self) -> None:
        self.at = time.monotonic()

    def answer(self) -> tuple[int, dict[str, Any]]:
        # Information, not a verdict: a long import in this process keeps the follower waiting, legitimately, and
        # a worker that stops serving is gunicorn's to restart (its timeout). Live is: this process answers.
        return 200, {"status": "ok", "process": os.getpid(), "followed_s_ago": round(time.monotonic() - self.at, 3)}


def _serve_liveness(host: str, port: int, heartbeat: _Heartbeat) -> None:
    """Answer ``GET /health`` on ``port`` from a thread of each worker, outside gunicorn's queue: a liveness probe
    under load waited behind every search (2.8 to 3.6 s measured, issue 14) and would have killed a healthy
    server. The answer touches nothing but the heartbeat (no database, no lock). Every worker listens on the port
    (SO_REUSEPORT): the kernel spreads probes over them. Readiness and what is loaded: /health on the API port."""

    class Handler(socketserver.StreamRequestHandler):
        timeout = 5  # a client that sends nothing does not hold the thread

        def handle(self) -> None:
            try:
                line = self.rfile.readline(1024).decode("latin1").split()
                for _ in range(100):  # read the headers: closing on unread bytes would reset the connection
                    if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                        break
            except OSError:
                return
            if len(line) >= 2 and line[0] in ("GET", "HEAD") and line[1].split("?")[0] in ("/health", "/livez"):
                status, found = heartbeat.answer()
            else:
                status, found = 404, {"error": {"status": 404, "code": "not_found", "message": "GET /health"}}
            body = json.dumps(found).encode()
            reason = "OK" if status == 200 else "Not Found"
            head = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            with contextlib.suppress(OSError):
                self.wfile.write(head.encode() + (b"" if line[:1] == ["HEAD"] else body))

    class Listener(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        def server_bind(self) -> None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # every worker on one port
            super().server_bind()

    try:
        with Listener((host, port), Handler) as listener:
            listener.serve_forever(poll_interval=1.0)
    except OSError:
        logger.exception("cannot answer liveness probes on %s:%s", host, port)


def _follow(engine: Any, heartbeat: _Heartbeat) -> None:
    """Keep an idle worker current with the store (a request also catches up before it answers)."""
    stop = threading.Event()
    while not stop.wait(FOLLOW_EVERY_S):
        try:
            engine.index.refresh()
        except Exception:  # noqa: BLE001 (a follower that dies would leave the worker behind for good)
            logger.exception("following the store failed; retrying")
            continue
        heartbeat.beat()
