"""A hostile tester's run: well over a thousand hand-made nasty HTTP requests against a real `matcher serve`
(API keys, gunicorn, several workers), on every route where each case applies.

    python bench/hostile.py                       # 2 workers, 4 threads each
    python bench/hostile.py --keep                # keep the data dir and the server's log
    python bench/hostile.py --workers 1 --threads 1 --parallel 1 -v

The Homelive fixtures are loaded into a temporary data dir, one key is made per role (admin, planner, widget bound
to two origins) plus one revoked admin key, and the server is started with rate limits so high that no 429 hides
another answer. Every operation is enumerated from GET /openapi.json; then, group by group: Origin abuse with each
role, deep JSON, odd numbers, hostile strings and ids, CSV and JSON Lines imports, content types, methods,
HEAD and OPTIONS, query parameters, authentication, and malformed requests on a raw socket.

Prints how many requests got each status, every 5xx (method, path, case, status, body), every error answer that
is not `{"error": {"status", "code", "message", ...}}` JSON, then checks that the server still answers /health and
that `python -m matcher check` passes on the data dir. Exit status 1 if any of that fails, else 0. Notes that do not
count follow the lists: laxness (origins normalised, truncated bodies processed, lossy ids, slow answers) and the
exceptions the server logged. `--answers FILE` writes every case and its answer as JSON Lines.
Only the standard library speaks HTTP here (sockets, and http.client to parse the answers), so that anything can
be sent: duplicate headers, raw bytes, broken framing.
"""

from __future__ import annotations

import argparse
import collections
import copy
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT_DIR / "fixtures" / "homelive"
PYTHON = sys.executable
HOST = "127.0.0.1"
ROLES = ("widget", "planner", "admin", "anonymous", "failed")  # routes/guard.py DEFAULT_RATE_LIMITS
UNLIMITED = json.dumps({role: "100000000 per minute" for role in ROLES})
WIDGET_ORIGINS = ("https://www.example.com", "http://localhost:8080")
TIMEOUT_S = 150  # above gunicorn's worker timeout (120 s): a request that hangs a worker shows as one
RAW_WAIT_S = 10  # garbage on a raw socket: an answer, a close, or (noted) a connection the server keeps waiting on
KB, MB = 1024, 1024 * 1024
DEFAULT = object()  # "the usual" for a header: the role's key, the widget's origin


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "RELAIS_RATE_LIMITS": UNLIMITED}


def matcher(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "matcher", *args], cwd=PROJECT_DIR, env=env(), capture_output=True, text=True, check=check
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# -- the server ---------------------------------------------------------------------------------------------------


class Served:
    """`matcher serve` with API keys, its own process group, logging to a file (as bench/serving.py's Served, with
    the keys made beforehand and every rate limit, "failed" included, out of the way)."""

    def __init__(self, data_dir: Path, log: Path, workers: int, threads: int):
        self.port, self.workers = free_port(), workers
        self.log = log.open("w")
        command = [PYTHON, "-m", "matcher", "serve", "--data-dir", str(data_dir), "--port", str(self.port)]
        command += ["--workers", str(workers), "--threads", str(threads)]
        self.process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env(), stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: see {log}")
            try:
                if len(self.processes_answering(8)) == workers:
                    return
            except (OSError, ValueError, http.client.HTTPException):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the server did not start: see {log}")

    def health(self) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            conn.request("GET", "/health")
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def processes_answering(self, tries: int) -> set[int]:
        return {body["process"] for status, body in (self.health() for _ in range(tries)) if status == 200}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.log.close()


# -- one request, sent raw ----------------------------------------------------------------------------------------


@dataclass
class Case:
    group: str
    desc: str
    method: str
    target: str | bytes  # the request target as sent (already percent-encoded where meant)
    body: bytes | None = None
    role: str | None = "admin"  # whose key goes in Authorization (None: no key)
    headers: list[tuple[Any, Any]] = field(default_factory=list)  # added as given: duplicates, bytes, anything
    content_type: Any = DEFAULT  # DEFAULT: application/json when there is a body; None: no header
    origin: Any = DEFAULT  # DEFAULT: a widget key sends its page's origin; None: no Origin header
    raw: bytes | None = None  # the whole request, exactly as sent (raw socket cases)
    allow_no_answer: bool = False  # closing the connection without an answer is acceptable (garbage on the wire)
    shut_write: bool = False  # half-close after sending (a body shorter than its Content-Length)
    timeout: float = TIMEOUT_S  # how long to wait for an answer


@dataclass
class Answer:
    case: Case
    status: int | None
    headers: dict[str, str]
    body: bytes
    error: str = ""
    seconds: float = 0.0

    @property
    def method(self) -> str:
        return self.case.method

    @property
    def path(self) -> str:
        target = self.case.target if isinstance(self.case.target, bytes) else self.case.target.encode()
        shown = target.decode("utf-8", "backslashreplace")
        return shown if len(shown) <= 140 else f"{shown[:120]}…({len(shown)} chars)"


class Client:
    def __init__(self, port: int, keys: dict[str, str]):
        self.port, self.keys = port, keys

    def request_bytes(self, case: Case) -> bytes:
        if case.raw is not None:
            return case.raw
        target = case.target if isinstance(case.target, bytes) else case.target.encode()
        lines = [case.method.encode() + b" " + target + b" HTTP/1.1", f"Host: {HOST}:{self.port}".encode()]
        if case.role is not None:
            lines.append(b"Authorization: Bearer " + self.keys[case.role].encode())
        origin = (WIDGET_ORIGINS[0] if case.role == "widget" else None) if case.origin is DEFAULT else case.origin
        if origin is not None:
            lines.append(b"Origin: " + _b(origin))
        content_type = (
            ("application/json" if case.body is not None else None)
            if case.content_type is DEFAULT
            else (case.content_type)
        )
        if content_type is not None:
            lines.append(b"Content-Type: " + _b(content_type))
        names = {_b(k).lower() for k, _ in case.headers}
        if case.body is not None and b"content-length" not in names and b"transfer-encoding" not in names:
            lines.append(f"Content-Length: {len(case.body)}".encode())
        for name, value in case.headers:
            lines.append(_b(name) + b": " + _b(value))
        if b"connection" not in names:
            lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + (case.body or b"")

    def send(self, case: Case) -> Answer:
        data = self.request_bytes(case)
        started = time.perf_counter()
        try:
            sock = socket.create_connection((HOST, self.port), timeout=case.timeout)
        except OSError as e:
            return Answer(case, None, {}, b"", f"connect: {e!r}")
        try:
            sent, view = 0, memoryview(data)
            while sent < len(data):  # stop sending as soon as the server answers (a 413 before the whole body)
                readable, writable, _ = select.select([sock], [sock], [], case.timeout)
                if readable:
                    break
                if not writable:
                    return Answer(case, None, {}, b"", "timed out sending", time.perf_counter() - started)
                try:
                    sent += sock.send(view[sent : sent + 256 * KB])
                except OSError:
                    break
            if case.shut_write:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            response = http.client.HTTPResponse(sock, method=case.method)
            try:
                response.begin()
                body = response.read()
            except http.client.IncompleteRead as e:
                body = e.partial
            headers = {k.lower(): v for k, v in response.getheaders()}
            return Answer(case, response.status, headers, body, "", time.perf_counter() - started)
        except (OSError, http.client.HTTPException, ValueError) as e:
            return Answer(case, None, {}, b"", f"{type(e).__name__}: {e}"[:200], time.perf_counter() - started)
        finally:
            sock.close()


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def J(value: Any, ascii_only: bool = False) -> bytes:
    """JSON as bytes; lone surrogates need ascii_only (they are written as \\ud800 escapes)."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


# -- what is checked ----------------------------------------------------------------------------------------------


def problems_of(answer: Answer) -> list[str]:
    """Why this answer breaks the rules: a 5xx, an error answer not in the API's one shape, no answer at all."""
    case, status = answer.case, answer.status
    if status is None:
        return [] if case.allow_no_answer else [f"no answer ({answer.error})"]
    found = []
    if status >= 500:
        found.append(f"{status}")
    if status >= 400 and status != 304 and case.method != "HEAD":
        kind = answer.headers.get("content-type", "")
        try:
            parsed = json.loads(answer.body)
        except ValueError:
            return [*found, f"error body is not JSON (Content-Type {kind!r})"]
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if not isinstance(error, dict) or not all(k in error for k in ("status", "code", "message")):
            found.append("error JSON is not {error: {status, code, message}}")
        elif error["status"] != status or not isinstance(error["code"], str) or not isinstance(error["message"], str):
            found.append(f"error.status {error['status']!r} differs from the HTTP status, or code/message not text")
        if not kind.startswith("application/json"):
            found.append(f"error answer with Content-Type {kind!r}")
    return found


def sent_origin(case: Case) -> bytes | None:
    if case.origin is DEFAULT:
        return WIDGET_ORIGINS[0].encode() if case.role == "widget" else None
    return None if case.origin is None else _b(case.origin)


def notes_of(answers: list[Answer]) -> list[str]:
    """What is not a failure by this script's rules but worth a look: laxness a hostile tester would report. One
    line per kind of note, with how many requests showed it and an example."""
    found: dict[str, list[str]] = collections.defaultdict(list)
    allowed = {o.encode() for o in WIDGET_ORIGINS}
    for a in answers:
        c, status = a.case, a.status
        if status is None:
            continue
        origin = sent_origin(c)
        shown = f"{c.method} {a.path[:70]} [{c.group}] {c.desc}"
        if c.role == "widget" and status < 400 and origin is not None and origin not in allowed:
            found[f"widget key accepted from Origin {origin[:60]!r} (it normalises to an allowed one)"].append(shown)
        acao = a.headers.get("access-control-allow-origin")
        if acao and acao != "*" and status < 400 and acao.encode("latin-1", "replace") not in allowed:
            found[f"Access-Control-Allow-Origin echoes {acao[:60]!r} as sent, on a {status}"].append(shown)
        if ("shorter than Content-Length" in c.desc or "cut short" in c.desc or "no last chunk" in c.desc) and (
            status < 400
        ):
            found["a body cut short (fewer bytes than its Content-Length, then the client went away) was processed "
                  "as if complete"].append(f"{shown} -> {status} {a.body[:110]!r}")  # fmt: skip
        if c.desc.startswith("no Host") and status < 400:
            found["answered without a Host header (HTTP/1.1 requires one: RFC 9112 says 400)"].append(shown)
        if status in (200, 201) and c.method == "PUT" and "\ufffd" in a.body[:300].decode("utf-8", "replace"):
            found["a record was written under an id holding U+FFFD: invalid UTF-8 in the path is decoded lossily, "
                  "so different URLs name the same record"].append(shown)  # fmt: skip
        if a.seconds > 5:
            found["slow answers (over 5 s)"].append(f"{a.seconds:.1f} s: {shown}")
    out = []
    for note, where in found.items():
        out.append(f"{note}: {len(where)} request(s)")
        out.extend(f"      e.g. {w}" for w in where[:3])
    return out


# -- the API as it describes itself -------------------------------------------------------------------------------


@dataclass
class Op:
    method: str
    template: str  # /v1/plans/{plan_id}
    roles: tuple[str, ...]
    example: Any  # the JSON body example, if it takes JSON
    lines: bool  # takes JSON Lines / CSV (imports)
    path_params: dict[str, str]  # name -> example
    query_params: list[str]

    @property
    def json_body(self) -> bool:
        return self.example is not None

    def path(self, **ids: str) -> str:
        out = self.template
        for name, example in self.path_params.items():
            out = out.replace("{" + name + "}", ids.get(name, example))
        return out

    def with_id(self, raw_id: str) -> str:
        """The path with every path parameter replaced by ``raw_id`` (already encoded)."""
        return self.path(**dict.fromkeys(self.path_params, raw_id))

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def operations(client: Client) -> list[Op]:
    answer = client.send(Case("setup", "openapi", "GET", "/openapi.json", role=None))
    assert answer.status == 200, answer
    document = json.loads(answer.body)
    ops = []
    for template, methods in document["paths"].items():
        for method, spec in methods.items():
            if method == "parameters":
                continue
            content = spec.get("requestBody", {}).get("content", {})
            example = content.get("application/json", {}).get("example")
            if "application/json" in content and example is None:
                example = {}
            params = spec.get("parameters", [])
            ops.append(
                Op(
                    method.upper(),
                    template,
                    tuple(r for r in spec.get("x-roles", ()) if r in ("widget", "planner", "admin")),
                    example,
                    "text/csv" in content or "application/x-ndjson" in content,
                    {p["name"]: str(p.get("example", "x")) for p in params if p["in"] == "path"},
                    [p["name"] for p in params if p["in"] == "query"],
                )
            )
    return ops


# -- the cases ----------------------------------------------------------------------------------------------------


class Cases:
    """Builds every case from the operations and the records the setup made."""

    def __init__(self, ops: list[Op], ids: dict[str, str]):
        self.ops, self.ids = ops, ids
        self.body_ops = [op for op in ops if op.json_body]
        self.get_ops = [op for op in ops if op.method == "GET"]
        self.protected = [op for op in ops if op.roles]
        self.event_n = 0
        self._lock = threading.Lock()

    def op(self, method: str, template: str) -> Op:
        return next(o for o in self.ops if o.method == method and o.template == template)

    def path(self, op: Op) -> str:
        return op.path(**self.ids)

    def example(self, op: Op) -> Any:
        """A body the route accepts (near enough: some conflict on a second use, which is fine)."""
        body = copy.deepcopy(op.example)
        if op.template == "/v1/events":
            body = {"events": [self.event() for _ in range(2)]}
        return body

    def event(self, **fields: Any) -> dict[str, Any]:
        with self._lock:
            self.event_n += 1
            n = self.event_n
        return {
            "event_id": f"hostile-{n}",
            "type": "impression",
            "request_id": "hostile-request",
            "rank": 1,
            "item_id": "cnt-orange-01",
            "moment": "discovery",
            **fields,
        }

    def role_for(self, op: Op) -> str:
        return "admin" if "admin" in op.roles or not op.roles else op.roles[-1]

    # Each group returns its cases; `destructive` runs last, alone.

    def baseline(self) -> list[Case]:
        out = []
        for op in self.ops:
            if op.method == "DELETE":
                continue
            body = J(self.example(op)) if op.json_body else (b'{"id":"x"}\n' if op.lines else None)
            target = self.path(op)
            if op.template == "/v1/match" and op.method == "GET":
                target += "?moment=discovery&types=content&products=homelive&limit=3"
            if op.template == "/v1/influencers" and op.method == "GET":
                target += "?q=julien"
            if op.template == "/v1/import":
                target += "?kind=influencers"
            out.append(Case("baseline", "the documented example", op.method, target, body, role=self.role_for(op)))
        return out

    def origins(self) -> list[Case]:
        five_kb = "https://" + "a" * 5000 + ".example"
        origins = [
            ("null", "null"),
            ("a path", "https://www.example.com/some/path"),
            ("port 99999", "https://www.example.com:99999"),
            ("port 0", "https://www.example.com:0"),
            ("port not a number", "https://www.example.com:abc"),
            ("unclosed IPv6 host", "https://[::1"),
            ("IPv6 host", "https://[::1]:8080"),
            ("two origins, space-separated", "https://www.example.com https://evil.example"),
            ("two origins, comma-separated", "https://www.example.com, https://evil.example"),
            ("5 KB origin", five_kb),
            ("non-ASCII host as UTF-8", "https://exämple.com".encode()),
            ("latin-1 byte", b"https://ex\xe4mple.com"),
            ("emoji host", "https://🦄.example".encode()),
            ("RTL override", "https://www.example.com\u202e".encode()),
            ("scheme only", "https://"),
            ("userinfo", "https://user:pw@www.example.com"),
            ("query string", "https://www.example.com?x=1"),
            ("javascript:", "javascript:alert(1)"),
            ("file://", "file://"),
            ("empty", ""),
            ("trailing dot", "https://www.example.com."),
            ("upper case (allowed one)", "HTTPS://WWW.EXAMPLE.COM"),
            ("control character", b"https://www.example.com\x01"),
            ("allowed origin + tab", b"https://www.example.com\t"),
        ]
        out = []
        routes = [
            ("GET", "/v1/match?moment=discovery&types=content&limit=2", None),
            ("POST", "/v1/match", J({"moment": "discovery", "limit": 2})),
            ("GET", "/v1/moments", None),
            ("POST", "/v1/moments/detect", J({"text": "ça marche avec ma box ?"})),
            ("POST", "/v1/events", "events"),
        ]
        for role in ("widget", "planner", "admin", None):
            chosen = routes if role == "widget" else routes[:3]
            for desc, origin in origins:
                for method, path, body in chosen:
                    if body == "events":
                        body = J({"events": [self.event()]})
                    out.append(
                        Case(
                            "origin", f"{role or 'no'} key, Origin {desc}", method, path, body, role=role, origin=origin
                        )
                    )
            for method, path, body in chosen[:2]:
                two = [("Origin", WIDGET_ORIGINS[0]), ("Origin", "https://evil.example")]
                out.append(
                    Case(
                        "origin",
                        f"{role or 'no'} key, two Origin headers",
                        method,
                        path,
                        body,
                        role=role,
                        origin=None,
                        headers=two,
                    )
                )
        # CORS preflights: no key, odd origins and odd requested methods / headers.
        preflights = [
            ("allowed origin", WIDGET_ORIGINS[0], "POST", "content-type"),
            ("allowed origin, method FOO", WIDGET_ORIGINS[0], "FOO", "content-type"),
            ("allowed origin, empty method", WIDGET_ORIGINS[0], "", ""),
            ("allowed origin, 5 KB requested headers", WIDGET_ORIGINS[0], "POST", ",".join(["x-a"] * 1200)),
            ("allowed origin, control char in requested headers", WIDGET_ORIGINS[0], "POST", b"x-\x01"),
            ("allowed origin, non-ASCII requested headers", WIDGET_ORIGINS[0], "POST", "x-é".encode()),
        ] + [(f"origin {d}", o, "POST", "authorization") for d, o in origins]
        for path in ("/v1/match", "/v1/events", "/v1/influencers/inf-julien-domotique", "/nowhere"):
            for desc, origin, method, requested in preflights:
                headers = [("Access-Control-Request-Method", method), ("Access-Control-Request-Headers", requested)]
                out.append(
                    Case("preflight", f"OPTIONS, {desc}", "OPTIONS", path, role=None, origin=origin, headers=headers)
                )
        out.append(
            Case(
                "preflight",
                "OPTIONS with a key and a body",
                "OPTIONS",
                "/v1/match",
                J({"a": 1}),
                origin=WIDGET_ORIGINS[0],
            )
        )
        out.append(Case("preflight", "OPTIONS *", "OPTIONS", "*", role=None))
        return out

    def nesting(self) -> list[Case]:
        out = []
        for op in self.body_ops:
            for depth in (33, 100, 500, 5000):
                for shape, text in (
                    ("arrays", "[" * depth + "]" * depth),
                    ("objects", '{"a":' * depth + "1" + "}" * depth),
                ):
                    out.append(
                        Case(
                            "nesting",
                            f"{depth} nested {shape}",
                            op.method,
                            self.path(op),
                            text.encode(),
                            role=self.role_for(op),
                        )
                    )
                example = self.example(op)
                if isinstance(example, dict) and example:
                    key = next(iter(example))
                    example[key] = "__DEEP__"
                    text = J(example).replace(b'"__DEEP__"', b"[" * depth + b"]" * depth)
                    out.append(
                        Case(
                            "nesting",
                            f"{depth} nested arrays in field {key!r}",
                            op.method,
                            self.path(op),
                            text,
                            role=self.role_for(op),
                        )
                    )
            out.append(
                Case("nesting", "100,000 unclosed [", op.method, self.path(op), b"[" * 100_000, role=self.role_for(op))
            )
            out.append(
                Case(
                    "nesting",
                    "brackets inside a string (5000 deep, not nesting)",
                    op.method,
                    self.path(op),
                    J({"x": "[" * 5000}),
                    role=self.role_for(op),
                )
            )
        for depth in (100, 500, 5000):
            line = (
                '{"id": "inf-deep", "name": "Deep", "category": "customer", "platforms": ' + "[" * depth + "]" * depth
            )
            line += "}"
            out.append(
                Case(
                    "nesting",
                    f"import line nested {depth} deep",
                    "POST",
                    "/v1/import?kind=influencers",
                    line.encode() + b"\n",
                    content_type="application/x-ndjson",
                )
            )
            out.append(
                Case(
                    "nesting",
                    f"import: {depth} nested objects, kind told from it",
                    "POST",
                    "/v1/import",
                    ('{"a":' * depth + "1" + "}" * depth).encode(),
                    content_type="application/x-ndjson",
                )
            )
            out.append(
                Case(
                    "nesting",
                    f"import: {depth} nested arrays, kind told from it",
                    "POST",
                    "/v1/import",
                    ("[" * depth + "]" * depth).encode(),
                    content_type="application/x-ndjson",
                )
            )
        out.append(
            Case(
                "nesting",
                "import: 1000 nested objects, kind told from it",
                "POST",
                "/v1/import",
                ('{"a":' * 1000 + "1" + "}" * 1000).encode(),
                content_type="application/x-ndjson",
            )
        )
        out.append(
            Case(
                "nesting",
                "import: a valid line, then 5000 nested objects, kind told from them",
                "POST",
                "/v1/import",
                b'{"x": 1}\n' + ('{"a":' * 5000 + "1" + "}" * 5000).encode(),
                content_type="application/x-ndjson",
            )
        )
        return out

    def numbers(self) -> list[Case]:
        values = [
            "1e309",
            "-1e309",
            "-0",
            "-0.0",
            str(2**70),
            str(-(2**70)),
            str(2**63),
            "NaN",
            "Infinity",
            "-Infinity",
            "1.5",
            "10.0",
            "1e2",
            "1e-400",
            "123456789012345678901234567890.5",
            '"10"',
            '"ten"',
            '""',
            "true",
            "false",
            "null",
            "{}",
            "[]",
            "0",
            "-1",
            "0x10",
            "01",
            ".5",
            "1_000",
        ]
        activation = self.op("PUT", "/v1/activations/{activation_id}")
        fields = [
            (self.op("POST", "/v1/match"), ("limit",), values),
            (self.op("POST", "/v1/match"), ("filters", "min_followers"), values),
            (self.op("POST", "/v1/match"), ("filters", "max_followers"), values[:12]),
            (self.op("POST", "/v1/match"), ("explore",), values[:12] + values[18:]),
            (self.op("POST", "/v1/match"), ("query",), values[:12] + values[18:]),
            (self.op("POST", "/v1/match"), ("moment",), values[:12] + values[18:]),
            (self.op("POST", "/v1/match"), ("types",), values[18:]),
            (self.op("POST", "/v1/events"), ("events", 0, "rank"), values),
            (self.op("POST", "/v1/events"), ("events", 0, "value"), values),
            (self.op("POST", "/v1/events"), ("events", 0, "at"), values),
            (self.op("POST", "/v1/events"), ("events",), values[18:]),
            (self.op("PUT", "/v1/influencers/{record_id}"), ("platforms", 0, "followers"), values),
            (self.op("PUT", "/v1/influencers/{record_id}"), ("platforms", 0, "engagement_rate"), values),
            (self.op("PUT", "/v1/influencers/{record_id}"), ("opted_out",), values[:12] + values[18:]),
            (self.op("PUT", "/v1/content/{record_id}"), ("sentiment",), values),
            (self.op("PUT", "/v1/content/{record_id}"), ("engagement",), ['{"likes": ' + v + "}" for v in values]),
            (self.op("PUT", "/v1/content/{record_id}"), ("published_at",), values[:12]),
            (self.op("POST", "/v1/plans"), ("budget",), ['{"partner": ' + v + "}" for v in values]),
            (self.op("POST", "/v1/plans"), ("alternates",), values),
            (self.op("POST", "/v1/plans"), ("min_followers",), values[:12]),
            (self.op("PATCH", "/v1/plans/{plan_id}"), ("edits", 0, "position"), values),
            (self.op("PUT", "/v1/influencers/{influencer_id}/hold"), ("until",), values[:12]),
            (activation, ("starts_on",), values[:12]),
            (self.op("POST", "/v1/moments/detect"), ("text",), values[:12] + values[18:]),
            (self.op("POST", "/v1/campaigns"), ("name",), values[:12]),
        ]
        out = []
        for op, where, chosen in fields:
            for value in chosen:
                body = self.example(op)
                if op.template == "/v1/campaigns":
                    body.pop("id")  # a new campaign each time
                _set(body, where, "__X__")
                text = J(body).replace(b'"__X__"', value.encode())
                name = ".".join(map(str, where))
                out.append(
                    Case("numbers", f"{name} = {value[:40]}", op.method, self.path(op), text, role=self.role_for(op))
                )
        # Query strings: numbers where numbers are expected.
        for value in [
            "-1",
            "0",
            "1",
            str(10**20),
            "1e309",
            "1e2",
            "NaN",
            "inf",
            "-0",
            "1.5",
            "",
            "true",
            "%00",
            "%20",
            "0x10",
            "1,2",
            "1%2C2",
            "%EF%BC%91",
        ]:
            for template, name in (
                ("/v1/match?moment=discovery&limit={}", "limit"),
                ("/v1/match?moment=discovery&min_followers={}", "min_followers"),
                ("/v1/match?moment=discovery&explore={}", "explore"),
                ("/v1/activations?limit={}", "limit"),
                ("/v1/activations?offset={}", "offset"),
                ("/v1/influencers?q=ju&limit={}", "limit"),
                ("/v1/kpis?themes={}", "themes"),
            ):
                out.append(Case("numbers", f"query {name}={value}", "GET", template.format(value), role="planner"))
        # Null and empty everywhere, and bodies of the wrong JSON type.
        for op in self.body_ops:
            for text in (b"null", b"{}", b"[]", b'""', b"0", b"true", b'"a string"', b"1e309", b"NaN"):
                out.append(
                    Case("nulls", f"body {text.decode()}", op.method, self.path(op), text, role=self.role_for(op))
                )
            example = self.example(op)
            out.append(
                Case("nulls", "the example in a list", op.method, self.path(op), J([example]), role=self.role_for(op))
            )
            if isinstance(example, dict):
                out.append(
                    Case(
                        "nulls",
                        "every field null",
                        op.method,
                        self.path(op),
                        J(dict.fromkeys(example)),
                        role=self.role_for(op),
                    )
                )
                out.append(
                    Case(
                        "nulls",
                        "every field {}",
                        op.method,
                        self.path(op),
                        J({k: {} for k in example}),
                        role=self.role_for(op),
                    )
                )
                out.append(
                    Case(
                        "nulls",
                        "every field []",
                        op.method,
                        self.path(op),
                        J({k: [] for k in example}),
                        role=self.role_for(op),
                    )
                )
                for key in example:
                    for empty in (None, {}, [], "", [None], {"": None}):
                        body = {**example, key: empty}
                        out.append(
                            Case(
                                "nulls",
                                f"{key} = {json.dumps(empty)}",
                                op.method,
                                self.path(op),
                                J(body),
                                role=self.role_for(op),
                            )
                        )
                out.append(
                    Case(
                        "nulls",
                        "an empty key and a NUL key",
                        op.method,
                        self.path(op),
                        J({**example, "": 1, "\x00": 2}),
                        role=self.role_for(op),
                    )
                )
                out.append(
                    Case(
                        "nulls",
                        "duplicate keys in the object",
                        op.method,
                        self.path(op),
                        J(example)[:-1] + b", " + J(example)[1:],
                        role=self.role_for(op),
                    )
                )
        return out

    def strings(self) -> list[Case]:
        out = []
        queries = [
            ("a double quote", '"'),
            ("two double quotes", '""'),
            ("unclosed quote", '"capteur fumée'),
            ("star", "*"),
            ("prefix star", "capt*"),
            ("leading star", "*apteur"),
            ("NEAR(", "NEAR("),
            ("NEAR(a b, 5)", "NEAR(capteur fumée, 5)"),
            ("trailing OR", "capteur OR"),
            ("OR alone", "OR"),
            ("AND alone", "AND"),
            ("NOT alone", "NOT"),
            ("a NOT b", "capteur NOT fumée"),
            ("minus alone", "-"),
            ("leading minus", "-capteur"),
            ("caret", "^"),
            ("caret prefix", "^capteur"),
            ("column filter", "title:x"),
            ("column set", "{title bio}: x"),
            ("open paren", "("),
            ("close paren", ")"),
            ("empty parens", "()"),
            ("single quote", "'"),
            ("SQL injection", "'; DROP TABLE influencers; --"),
            ("UNION", "' UNION SELECT 1 --"),
            ("backslash", "\\"),
            ("LIKE wildcards", "%_%"),
            ("NUL", "\x00"),
            ("NUL inside", "cap\x00teur"),
            ("control characters", "\x01\x02\x1b[31m\x7f"),
            ("lone surrogate", "\ud800"),
            ("reversed surrogates", "\udfff\ud800"),
            ("RTL override", "\u202eruetpac"),
            ("emoji", "🦄🔥 capteur 👨‍👩‍👧"),
            ("zero-width", "cap\u200bteur\ufeff"),
            ("combining marks", "e" + "\u0301" * 500),
            ("1000 chars", "x" * 1000),
            ("1001 chars", "x" * 1001),
            ("1000 spaces", " " * 1000),
            ("100 newlines", "\n" * 100),
            ("500 quotes", "a" + '"' * 500),
            ("all FTS operators", '"* NEAR( OR - ^ AND NOT )'),
            ("whitespace only", " \t "),
            ("private-use and non-characters", "\ue000\uffff\U0010ffff"),
        ]
        for desc, text in queries:
            ascii_only = any(0xD800 <= ord(c) <= 0xDFFF for c in text)
            out.append(
                Case(
                    "strings",
                    f"POST match query: {desc}",
                    "POST",
                    "/v1/match",
                    J({"moment": "technical_validation", "query": text, "limit": 3}, ascii_only),
                )
            )
            out.append(
                Case(
                    "strings",
                    f"POST match text (chatbot): {desc}",
                    "POST",
                    "/v1/match",
                    J({"text": text, "limit": 3}, ascii_only),
                    role="widget",
                )
            )
            out.append(
                Case(
                    "strings",
                    f"detect text: {desc}",
                    "POST",
                    "/v1/moments/detect",
                    J({"text": text}, ascii_only),
                    role="widget",
                )
            )
            out.append(
                Case(
                    "strings",
                    f"plan brief: {desc}",
                    "POST",
                    "/v1/plans",
                    J({"products": ["homelive"], "brief": text, "moments": ["discovery"]}, ascii_only),
                    role="planner",
                )
            )
            encoded = q(text) if not ascii_only else "%ED%A0%80"  # a lone surrogate in UTF-8 form: not UTF-8
            out.append(
                Case(
                    "strings",
                    f"GET match query: {desc}",
                    "GET",
                    f"/v1/match?moment=discovery&types=content&query={encoded}",
                    role="widget",
                )
            )
            out.append(
                Case("strings", f"influencer search q: {desc}", "GET", f"/v1/influencers?q={encoded}", role="planner")
            )
            out.append(Case("strings", f"kpis campaign: {desc}", "GET", f"/v1/kpis?campaign={encoded}", role="planner"))
        # 10 MB strings, and bodies just over each limit.
        ten = "x" * (10 * MB)
        big = [
            ("POST", "/v1/match", {"moment": "discovery", "query": ten}, "widget"),
            ("POST", "/v1/moments/detect", {"text": ten}, "widget"),
            ("POST", "/v1/events", {"events": [self.event(moment=ten)]}, "widget"),
            ("PUT", "/v1/influencers/inf-hostile-big", {**self.influencer(), "bio": ten}, "admin"),
            ("PUT", "/v1/content/cnt-hostile-big", {**self.content(), "text": ten}, "admin"),
            ("POST", "/v1/plans", {"brief": ten, "products": ["homelive"]}, "planner"),
            ("POST", "/v1/campaigns", {"name": ten}, "planner"),
        ]
        for method, path, body, role in big:
            out.append(Case("strings", "a 10 MB string (over the body limit)", method, path, J(body), role=role))
        for limit, method, path, role in (
            (64 * KB, "POST", "/v1/match", "widget"),
            (256 * KB, "PUT", "/v1/influencers/inf-hostile-big", "admin"),
            (1024 * KB, "POST", "/v1/events", "widget"),
        ):
            padded = {"moment": "discovery", "query": "x"} if path == "/v1/match" else {"x": ""}
            text = J(padded)
            text = text[:-1] + b', "pad": "' + b" " * (limit - len(text) - 11) + b'"}'  # exactly the limit
            out.append(Case("strings", f"a body 1 byte over {limit // KB} KiB", method, path, text + b" ", role=role))
            out.append(Case("strings", f"a body exactly {limit // KB} KiB", method, path, text, role=role))
        line = J({**self.influencer(), "id": "inf-hostile-10mb", "bio": ten})
        out.append(
            Case(
                "strings",
                "import: one 10 MB line",
                "POST",
                "/v1/import?kind=influencers",
                line,
                content_type="application/x-ndjson",
            )
        )
        out.append(
            Case(
                "strings",
                "GET match with a 10 MB query string",
                "GET",
                "/v1/match?moment=discovery&query=" + "x" * (10 * MB),
                role="widget",
                allow_no_answer=True,
            )
        )
        out.append(
            Case(
                "strings", "a 10 MB header", "GET", "/health", role=None, headers=[("X-Big", ten)], allow_no_answer=True
            )
        )
        out.append(
            Case(
                "strings",
                "a 65 MiB import (over 64 MiB)",
                "POST",
                "/v1/import?kind=influencers",
                b"{}\n" * (65 * MB // 3 + 10),
                content_type="application/x-ndjson",
            )
        )
        # Strings in record fields.
        for desc, text in queries:
            ascii_only = any(0xD800 <= ord(c) <= 0xDFFF for c in text)
            body = {**self.influencer(), "name": text, "bio": text, "topics": [text], "country": text}
            out.append(
                Case(
                    "strings",
                    f"influencer fields: {desc}",
                    "PUT",
                    "/v1/influencers/inf-hostile-strings",
                    J(body, ascii_only),
                )
            )
            body = {"name": text, "brief": text, "products": [text]}
            out.append(
                Case(
                    "strings", f"campaign fields: {desc}", "POST", "/v1/campaigns", J(body, ascii_only), role="planner"
                )
            )
            event = self.event(item_id=text, event_id=f"hostile-s-{len(out)}", moment=text)
            out.append(
                Case(
                    "strings",
                    f"event fields: {desc}",
                    "POST",
                    "/v1/events",
                    J({"events": [event]}, ascii_only),
                    role="widget",
                )
            )
        # Invalid UTF-8 and odd encodings in JSON bodies.
        for desc, text in (
            ("invalid UTF-8", b'{"moment": "discovery", "query": "\xff\xfe"}'),
            ("CESU-8 surrogate bytes", b'{"moment": "discovery", "query": "\xed\xa0\x80"}'),
            ("overlong UTF-8", b'{"moment": "discovery", "query": "\xc0\xaf"}'),
            ("UTF-8 BOM", b'\xef\xbb\xbf{"moment": "discovery"}'),
            ("UTF-16 body", '{"moment": "discovery"}'.encode("utf-16")),
            ("UTF-32 body", '{"moment": "discovery"}'.encode("utf-32")),
            ("NUL bytes around", b'\x00{"moment": "discovery"}\x00'),
            ("raw control chars in a string", b'{"moment": "discovery", "query": "a\x01\x0a\x1fb"}'),
            ("truncated", b'{"moment": "disc'),
            ("trailing garbage", b'{"moment": "discovery"} xyz'),
            ("two objects", b'{"moment": "discovery"}{"moment": "discovery"}'),
            ("single quotes", b"{'moment': 'discovery'}"),
            ("comments", b'{"moment": "discovery" /* x */}'),
            ("trailing comma", b'{"moment": "discovery",}'),
            ("binary", bytes(range(256))),
        ):
            for path, role in (
                ("/v1/match", "widget"),
                ("/v1/moments/detect", "widget"),
                ("/v1/plans", "planner"),
                ("/v1/influencers/inf-hostile-enc", "admin"),
            ):
                method = "PUT" if path.startswith("/v1/influencers") else "POST"
                out.append(Case("strings", f"body: {desc}", method, path, text, role=role))
        return out

    def influencer(self) -> dict[str, Any]:
        return {
            "name": "Hostile Tester",
            "category": "customer",
            "language": "fr",
            "platforms": [{"network": "instagram", "handle": "@hostile", "followers": 300}],
        }

    def content(self) -> dict[str, Any]:
        return {
            "influencer_id": "inf-julien-domotique",
            "format": "review",
            "title": "Essai hostile",
            "published_at": "2026-11-20T10:00:00+01:00",
        }

    def weird_ids(self) -> list[Case]:
        weird = [
            ("NUL as %00", "inf%00x"),
            ("control chars %01%1f%7f", "a%01b%1fc%7f"),
            ("newline %0A", "a%0Ab"),
            ("CRLF header injection", "a%0D%0AX-Injected:%201"),
            ("1000-char id", "x" * 1000),
            ("5000-char id", "y" * 5000),
            ("../ traversal", "../../../etc/passwd"),
            ("%2e%2e%2f traversal", "%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
            ("encoded slash", "inf-x%2Fhold"),
            ("double-encoded traversal", "%252e%252e%252f"),
            ("backslash traversal", "..%5c..%5cwindows"),
            ("lone surrogate as UTF-8 bytes", "%ED%A0%80"),
            ("invalid UTF-8", "%FF%FE"),
            ("overlong UTF-8 dot", "%C0%AE%C0%AE%2F"),
            ("RTL override", q("\u202egnp.exe")),
            ("emoji", q("🦄-licorne")),
            ("raw UTF-8 in the path", "é-raw".encode()),
            ("space", "a%20b"),
            ("trailing space", "inf-zoe-capteurs%20"),
            ("a dot", "."),
            ("two dots", ".."),
            ("SQL", q("' OR '1'='1")),
            ("a lone %", "%"),
            ("bad escape", "%zz"),
            ("encoded ?", "x%3Fy%3Dz"),
            ("encoded #", "x%23y"),
            ("JSON", q('{"a": 1}')),
            ("a 200-char id", "z" * 200),
            ("a 201-char id", "z" * 201),
            ("Windows device name", "CON"),
            ("wildcard %", "inf-%25"),
        ]
        out = []
        for op in self.ops:
            if not op.path_params:
                continue
            for desc, raw_id in weird:
                raw = raw_id if isinstance(raw_id, str) else None
                target = op.with_id(raw) if raw is not None else op.with_id("ID").encode().replace(b"ID", raw_id)
                body = None
                if op.json_body:
                    example = self.example(op)
                    if isinstance(example, dict):
                        example.pop("id", None)
                    body = J(example)
                out.append(Case("ids", desc, op.method, target, body, role=self.role_for(op)))
        return out

    def imports(self) -> list[Case]:
        head = "id,name,category,language,network,handle,followers\n"
        good = "inf-csv-{n},CSV {n},customer,fr,instagram,@csv{n},100\n"
        csv_cases = [
            ("a cell over 131,072 chars", head + f"inf-csv-big,{'x' * 131_073},customer,fr,instagram,@big,1\n"),
            ("a quoted cell over 131,072 chars", head + f'inf-csv-big2,"{"x" * 200_000}",customer,fr,instagram,@b,1\n'),
            ("an unclosed quote to the end", head + 'inf-csv-q,"' + "x" * 50_000 + "\n" * 10),
            ("BOM", "\ufeff" + head + good.format(n=1)),
            ("two BOMs", "\ufeff\ufeff" + head + good.format(n=2)),
            ("semicolons", head.replace(",", ";") + good.format(n=3).replace(",", ";")),
            ("tabs", head.replace(",", "\t") + good.format(n=4).replace(",", "\t")),
            ("a header only", head),
            ("a header without newline", head.strip()),
            ("an empty header line", "\n" + good.format(n=5)),
            ("duplicate columns", "id,id,name,name,category,network,followers\na,b,c,d,customer,x,1\n"),
            ("an empty column name", "id,,name,category,network,followers\ninf-csv-e,,E,customer,x,1\n"),
            ("more cells than columns", head + good.format(n=6).strip() + ",extra,extra\n"),
            ("fewer cells than columns", head + "inf-csv-7,Seven\n"),
            ("formula cells", head + "=cmd|' /C calc'!A0,+SUM(1),@x,-1,=1+1,=HYPERLINK(\"http://evil\"),100\n"),
            ("formula id, valid otherwise", head + "=1+1,@Formula,customer,fr,instagram,=x,100\n"),
            (
                "JSON in cells",
                'id,name,category,platforms\ninf-csv-j,J,customer,"[{""network"": ""x"", ""followers"": 1e309}]"\n',
            ),
            (
                "deep JSON in a cell",
                'id,name,category,platforms\ninf-csv-d,D,customer,"' + "[" * 5000 + "]" * 5000 + '"\n',
            ),
            ("NaN in a number cell", head + "inf-csv-n,N,customer,fr,instagram,@n,NaN\n"),
            ("1e309 in a number cell", head + "inf-csv-i,I,customer,fr,instagram,@i,1e309\n"),
            ("CR-only line ends", head.replace("\n", "\r") + good.format(n=8).replace("\n", "\r")),
            ("CRLF line ends", head.replace("\n", "\r\n") + good.format(n=9).replace("\n", "\r\n")),
            ("NUL bytes", head + "inf-csv-\x00,N\x00UL,customer,fr,instagram,@n,1\n"),
            ("lone surrogate escaped", head + "inf-csv-s,\\ud800,customer,fr,instagram,@s,1\n"),
            (
                "content CSV, bad dates",
                "id,influencer_id,format,title,published_at\ncnt-csv-1,inf-julien-domotique,"
                "review,T,2026-13-45T99:99:99\n",
            ),
            (
                "content CSV, engagement 2**70",
                "id,influencer_id,format,title,published_at,likes\ncnt-csv-2,"
                f"inf-julien-domotique,review,T,2026-01-01,{2**70}\n",
            ),
        ]
        out = []
        for desc, text in csv_cases:
            kind = "content" if text.startswith("id,influencer_id") else "influencers"
            out.append(
                Case(
                    "csv",
                    desc,
                    "POST",
                    f"/v1/import?kind={kind}",
                    text.encode("utf-8", "surrogatepass"),
                    content_type="text/csv",
                )
            )
            out.append(
                Case(
                    "csv",
                    f"{desc} (kind told from the header)",
                    "POST",
                    "/v1/import",
                    text.encode("utf-8", "surrogatepass"),
                    content_type="text/csv",
                )
            )
        binary = bytes(range(256)) * 64
        out.append(Case("csv", "binary bytes", "POST", "/v1/import?kind=influencers", binary, content_type="text/csv"))
        out.append(
            Case("csv", "binary bytes, kind from the header", "POST", "/v1/import", binary, content_type="text/csv")
        )
        wide = ",".join(f"c{n}" for n in range(100_000))
        out.append(
            Case(
                "csv",
                "100k columns",
                "POST",
                "/v1/import?kind=influencers",
                (wide + "\n" + ",".join("1" for _ in range(100_000)) + "\n").encode(),
                content_type="text/csv",
            )
        )
        out.append(
            Case(
                "csv",
                "100k columns, kind from the header",
                "POST",
                "/v1/import",
                ("id,category," + wide + "\n").encode(),
                content_type="text/csv",
            )
        )
        out.append(
            Case(
                "csv",
                "format=csv with a JSON content type",
                "POST",
                "/v1/import?kind=influencers&format=csv",
                (head + good.format(n=10)).encode(),
            )
        )
        out.append(
            Case(
                "csv",
                "100,000 rows of one empty cell",
                "POST",
                "/v1/import?kind=influencers",
                ("id\n" + "\n" * 100_000).encode(),
                content_type="text/csv",
            )
        )
        out.append(
            Case(
                "csv",
                "Latin-1 encoded CSV",
                "POST",
                "/v1/import?kind=influencers",
                (head + "inf-csv-l,Zoé Latin,customer,fr,instagram,@l,1\n").encode("latin-1"),
                content_type="text/csv",
            )
        )
        # JSON Lines.
        valid = json.dumps({**self.influencer(), "id": "inf-jsonl-ok"})
        jsonl = [
            ("1 MB of {} lines", b"{}\n" * (MB // 3)),
            ("1 MB of {} lines, kind from them", b"{}\n" * (MB // 3), ""),
            ("invalid UTF-8 bytes", b'{"id": "inf-\xff\xfe", "name": "x"}\n' + valid.encode() + b"\n"),
            (
                "mixed valid and invalid lines",
                "\n".join(
                    [
                        valid,
                        "{",
                        "[]",
                        "null",
                        "1e309",
                        "NaN",
                        '"x"',
                        '{"id": "inf-jsonl-bad"}',
                        valid.replace("ok", "ok2"),
                        '{"id": "\\ud800"}',
                        "[" * 5000,
                    ]
                ).encode(),
            ),
            ("only blank lines", b"\n \n\t\n\r\n" * 1000),
            ("BOM then a line", b"\xef\xbb\xbf" + valid.encode()),
            (
                "BOM on every line",
                b"\n".join(b"\xef\xbb\xbf" + valid.replace("ok", f"bom{n}").encode() for n in range(3)),
            ),
            ("CR-only line ends", "\r".join([valid.replace("ok", f"cr{n}") for n in range(3)]).encode()),
            ("one JSON array of records", json.dumps([json.loads(valid)]).encode()),
            ("the same id 1000 times", "\n".join([valid] * 1000).encode()),
            ("100,000 lines of 1", b"1\n" * 100_000),
            ("NUL bytes between lines", valid.encode() + b"\n\x00\x00\n" + valid.encode()),
            (
                "a line of NaN",
                b'{"id": "inf-nan", "name": "N", "category": "customer", "platforms": '
                b'[{"network": "x", "followers": NaN}]}\n',
            ),
            (
                "a line of 1e309",
                b'{"id": "inf-inf", "name": "N", "category": "customer", "platforms": '
                b'[{"network": "x", "followers": 1e309}]}\n',
            ),
            ("UTF-16 body", valid.encode("utf-16")),
            (
                "content with unknown author",
                json.dumps({**self.content(), "id": "cnt-jsonl-x", "influencer_id": "inf-nobody"}).encode(),
                "content",
            ),
        ]
        for item in jsonl:
            desc, body, kind = item if len(item) == 3 else (*item, "influencers")
            target = f"/v1/import?kind={kind}" if kind else "/v1/import"
            out.append(Case("jsonl", desc, "POST", target, body, content_type="application/x-ndjson"))
        for kind in ("unknown", "", "influencers&kind=content", "INFLUENCERS", "%00", "content%00", "x" * 5000):
            out.append(
                Case(
                    "jsonl",
                    f"kind={kind[:30]}",
                    "POST",
                    f"/v1/import?kind={kind}",
                    valid.encode(),
                    content_type="application/x-ndjson",
                )
            )
        for kind in (
            "text/plain",
            "application/jsonl",
            "application/json-lines",
            "application/json",
            "",
            "text/csv; charset=latin-1",
            "application/x-ndjson; charset=utf-16",
        ):
            out.append(
                Case(
                    "jsonl",
                    f"import as {kind or 'no'} content type",
                    "POST",
                    "/v1/import?kind=influencers",
                    valid.encode(),
                    content_type=kind or None,
                )
            )
        out.append(
            Case(
                "jsonl",
                "import with no body",
                "POST",
                "/v1/import?kind=influencers",
                b"",
                content_type="application/x-ndjson",
            )
        )
        out.append(
            Case(
                "jsonl", "import with no body, no kind", "POST", "/v1/import", b"", content_type="application/x-ndjson"
            )
        )
        return out

    def protocol(self) -> list[Case]:
        out = []
        content_types = [
            "text/plain",
            "text/xml",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "application/json; charset=utf-16",
            "application/x-www-form-urlencoded",
            "application/vnd.api+json",
            'application/json; charset="',
            "garbage",
            ";",
            "*/*",
            "application/json, text/plain",
            "application/json; charset=latin-1",
            "APPLICATION/JSON",
        ]
        for op in self.body_ops:
            body = J(self.example(op))
            for kind in content_types:
                sent = self.example(op)
                data = json.dumps(sent).encode("utf-16") if "utf-16" in kind else body
                out.append(
                    Case(
                        "types",
                        f"Content-Type {kind}",
                        op.method,
                        self.path(op),
                        data,
                        role=self.role_for(op),
                        content_type=kind,
                    )
                )
            out.append(
                Case(
                    "types",
                    "no Content-Type",
                    op.method,
                    self.path(op),
                    body,
                    role=self.role_for(op),
                    content_type=None,
                )
            )
            out.append(
                Case(
                    "types",
                    "two Content-Type headers",
                    op.method,
                    self.path(op),
                    body,
                    role=self.role_for(op),
                    content_type=None,
                    headers=[("Content-Type", "application/json"), ("Content-Type", "text/xml")],
                )
            )
            out.append(
                Case(
                    "types",
                    "a form body",
                    op.method,
                    self.path(op),
                    b"moment=discovery&limit=3",
                    role=self.role_for(op),
                    content_type="application/x-www-form-urlencoded",
                )
            )
            out.append(
                Case(
                    "types",
                    "multipart body",
                    op.method,
                    self.path(op),
                    b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n{}\r\n--x--\r\n',
                    role=self.role_for(op),
                    content_type="multipart/form-data; boundary=x",
                )
            )
            out.append(Case("missing", "empty body", op.method, self.path(op), b"", role=self.role_for(op)))
            out.append(
                Case(
                    "missing",
                    "no body, no Content-Length",
                    op.method,
                    self.path(op),
                    None,
                    role=self.role_for(op),
                    content_type="application/json",
                )
            )
            out.append(
                Case("missing", "whitespace body", op.method, self.path(op), b" \r\n\t ", role=self.role_for(op))
            )
            out.append(
                Case(
                    "missing",
                    "chunked, zero chunks",
                    op.method,
                    self.path(op),
                    b"0\r\n\r\n",
                    role=self.role_for(op),
                    headers=[("Transfer-Encoding", "chunked")],
                )
            )
            chunked = body + b""
            framed = f"{len(chunked):x}\r\n".encode() + chunked + b"\r\n0\r\n\r\n"
            out.append(
                Case(
                    "missing",
                    "the example, chunked",
                    op.method,
                    self.path(op),
                    framed,
                    role=self.role_for(op),
                    headers=[("Transfer-Encoding", "chunked")],
                )
            )
        for op in self.get_ops:
            role = self.role_for(op) if op.roles else None
            out.append(
                Case("get-body", "GET with a JSON body", "GET", self.path(op), J({"moment": "x", "a": [1]}), role=role)
            )
            out.append(
                Case(
                    "get-body",
                    "GET with a binary body",
                    "GET",
                    self.path(op),
                    bytes(range(256)),
                    role=role,
                    content_type="application/octet-stream",
                )
            )
            out.append(Case("head", "HEAD", "HEAD", self.path(op), role=role))
            out.append(Case("head", "HEAD without a key", "HEAD", self.path(op), role=None))
        # Wrong methods on every path.
        allowed: dict[str, set[str]] = collections.defaultdict(set)
        for op in self.ops:
            allowed[op.template].add(op.method)
        for template, methods in allowed.items():
            op = next(o for o in self.ops if o.template == template)
            path = self.path(op)
            for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - methods):
                out.append(
                    Case(
                        "methods",
                        f"{method} where only {'/'.join(sorted(methods))}",
                        method,
                        path,
                        J({"a": 1}) if method != "GET" else None,
                    )
                )
            out.append(Case("methods", "OPTIONS (no preflight headers)", "OPTIONS", path, role=None))
            for method in ("FOO", "TRACE", "PROPFIND", "CONNECT"):
                out.append(Case("methods", f"method {method}", method, path, allow_no_answer=method == "CONNECT"))
        out.append(Case("methods", "a 100-char method", "X" * 100, "/health", allow_no_answer=True))
        out.append(Case("methods", "lower-case get", "get", "/health", allow_no_answer=True))
        # Query parameters.
        params = [
            "moment=discovery&moment=desirability",
            "moment=discovery&limit=3&limit=5",
            "moment[]=discovery",
            "moment=discovery&types[]=content",
            "moment=discovery&filters[language]=fr",
            "moment=discovery&limit[]=3",
            "moment=discovery&limit=-1",
            "moment=discovery&limit=0",
            f"moment=discovery&limit={10**20}",
            "moment=purchase",
            "moment=",
            "moment=DISCOVERY",
            "moment=%20discovery",
            "moment=%00",
            f"moment={'m' * 1000}",
            "moment=discovery&color=red",
            "moment=discovery&category=unknown",
            "moment=discovery&min_followers=10&max_followers=1",
            "moment=discovery&network=" + ",".join("n" * 51),
            "moment=discovery&language=" + ",".join(f"l{n}" for n in range(60)),
            "moment=discovery&types=nothing",
            "moment=discovery&types=,,,",
            "moment=discovery&types=content,content,content",
            "moment=discovery&&&",
            "moment=discovery&=x",
            "moment=discovery&%00=1",
            "moment=discovery;limit=3",
            "moment=discovery&explore=maybe",
            "moment=discovery&query=",
            "moment=discovery&query=%",
            "moment=discovery&query=%zz",
            "",
            "moment=discovery&text=hello",
            "moment=discovery#fragment",
            "moment=discovery&products=" + ",".join(["p"] * 400),
            "moment=discovery&topics=%FF%FE",
            "moment=discovery&explore=true&explore=false",
        ]
        for query in params:
            for role in ("widget", "planner"):
                out.append(Case("params", f"GET match ?{query[:60]}", "GET", f"/v1/match?{query}", role=role))
        for body in (
            {"moment": "purchase"},
            {"moment": "discovery", "filters": {"color": "red"}},
            {"moment": "discovery", "filters": {"category": "unknown"}},
            {"moment": "discovery", "filters": {"min_followers": 10, "max_followers": 1}},
            {"moment": "discovery", "filters": {"network": ["n"] * 51}},
            {"moment": "discovery", "limit": -1},
            {"moment": "discovery", "limit": 0},
            {"moment": "discovery", "limit": 10**20},
            {"moment": "discovery", "types": ["nothing"]},
            {"moment": "discovery", "types": ["content", "content", "content"]},
            {"moment": "discovery", "query": "a", "text": "b"},
            {"text": ""},
            {"moment": "discovery", "x": 1},
            {"moment": "discovery", "filters": {"language": {"$ne": 1}}},
            {"moment": {"$gt": ""}},
            {"moment": ["discovery"]},
            {"moment": "__proto__"},
            {"moment": "discovery", "filters": {"__proto__": {"a": 1}}},
        ):
            out.append(
                Case("params", f"POST match {json.dumps(body)[:70]}", "POST", "/v1/match", J(body), role="widget")
            )
        kpis = [
            "group_by=unknown",
            "group_by=quarter&group_by=type&group_by=quarter",
            "voices=unknown",
            "voices=" + "v" * 51,
            "since=2026-13-45",
            "since=2027-01-01&until=2026-01-01",
            "since=0001-01-01",
            "until=9999-12-31",
            "themes=0",
            "themes=101",
            "campaign=" + ",".join(["c"] * 60),
            "category=unknown",
            "group_by=" + ",".join(["quarter"] * 60),
            "group_by[]=quarter",
            "x=1",
            "since=",
            "moment=%00",
            "group_by=item,campaign,moment,category,network,language,type,format,quarter",
        ]
        for query in kpis:
            out.append(Case("params", f"kpis ?{query[:60]}", "GET", f"/v1/kpis?{query}", role="planner"))
        acts = [
            "status=unknown",
            "since=garbage",
            "since=2026-02-30",
            "until=2026-01-01&since=2027-01-01",
            "limit=-1",
            "offset=-1",
            f"offset={10**20}",
            "campaign=",
            "influencer=" + "i" * 201,
            "x=1",
            "limit=1&limit=2",
            "moment=%00",
            "type=" + "t" * 51,
        ]
        for query in acts:
            out.append(Case("params", f"activations ?{query[:60]}", "GET", f"/v1/activations?{query}", role="planner"))
        for query in (
            "",
            "q=",
            "q=a",
            "q=ab&q=cd",
            "q=ab&category=unknown",
            "q=ab&limit=101",
            "q[]=ab",
            "q=%00%00",
            "q=" + "q" * 101,
            "q=__&category=customer",
            "q=%25%25",
        ):
            out.append(Case("params", f"influencers ?{query[:60]}", "GET", f"/v1/influencers?{query}", role="planner"))
        for query in ("lang=xx", "lang=", "lang=fr&lang=en", "lang=%00"):
            out.append(Case("params", f"planner page ?{query}", "GET", f"/planner?{query}", role=None))
        for query in ("key=rk_x", "api=javascript:alert(1)", "api=" + "a" * 300):
            out.append(
                Case("params", f"widget demo ?{query[:40]} (not dev: 404)", "GET", f"/widget/demo?{query}", role=None)
            )
        odd_headers = [  # (desc, path, role, header): one header each, on a GET
            ("If-None-Match: *", "/v1/match?moment=discovery", "widget", ("If-None-Match", "*")),
            ("If-None-Match: 5 KB", "/v1/match?moment=discovery", "widget", ("If-None-Match", '"' + "a" * 5000 + '"')),
            ("If-None-Match garbage", "/widget.js", None, ("If-None-Match", 'W/"\x01,,,"')),
            ("X-Request-ID 5 KB and odd", "/v1/moments", "planner", ("X-Request-ID", "../\x01" + "r" * 5000)),
            ("X-Forwarded-For spoofed", "/v1/moments", "planner", ("X-Forwarded-For", "1.2.3.4, ::1, garbage")),
            ("Accept-Language garbage", "/planner", None, ("Accept-Language", "*;q=NaN, fr;q=-1, " + "x" * 3000)),
            ("Range header", "/widget.js", None, ("Range", "bytes=-1,0-")),
            ("Accept-Encoding odd", "/openapi.json", None, ("Accept-Encoding", "gzip;q=2, br, *;q=0")),
        ]
        for desc, path, role, header in odd_headers:
            out.append(Case("params", desc, "GET", path, role=role, headers=[header]))
        return out

    def auth(self, keys: dict[str, str], revoked: str) -> list[Case]:
        admin, widget = keys["admin"], keys["widget"]
        admin_id = admin.split("_")[1]
        variants = [
            ("no key", []),
            ("Bearer alone", [("Authorization", "Bearer")]),
            ("Bearer and spaces", [("Authorization", "Bearer    ")]),
            ("lower-case bearer, valid key", [("Authorization", f"bearer {admin}")]),
            ("BEARER, valid key", [("Authorization", f"BEARER {admin}")]),
            ("Bearer without space", [("Authorization", f"Bearer{admin}")]),
            ("Basic credentials", [("Authorization", "Basic YWRtaW46YWRtaW4=")]),
            ("Token scheme", [("Authorization", f"Token {admin}")]),
            ("rk_ only", [("Authorization", "Bearer rk_")]),
            ("rk__", [("Authorization", "Bearer rk__")]),
            ("rk_x_", [("Authorization", "Bearer rk_x_")]),
            ("right id, wrong secret", [("Authorization", f"Bearer rk_{admin_id}_wrongsecret")]),
            ("right id, empty secret", [("Authorization", f"Bearer rk_{admin_id}_")]),
            ("revoked key", [("Authorization", f"Bearer {revoked}")]),
            ("revoked key in X-API-Key", [("X-API-Key", revoked)]),
            ("7 KB key (under gunicorn's 8 KB header limit)", [("Authorization", "Bearer rk_" + "a" * 7 * KB + "_x")]),
            ("10 KB key", [("Authorization", "Bearer rk_" + "a" * 10 * KB)]),
            ("10 KB key in X-API-Key", [("X-API-Key", "rk_" + "a" * 10 * KB + "_x")]),
            ("NUL in the key", [("Authorization", b"Bearer rk_abc\x00def_x")]),
            ("non-ASCII key", [("Authorization", "Bearer rk_é_é🦄".encode())]),
            ("latin-1 bytes", [("Authorization", b"Bearer rk_\xe9_\xff")]),
            ("valid key in both headers", [("Authorization", f"Bearer {admin}"), ("X-API-Key", admin)]),
            ("valid Bearer, junk X-API-Key", [("Authorization", f"Bearer {admin}"), ("X-API-Key", "junk")]),
            ("junk Bearer, valid X-API-Key", [("Authorization", "Bearer junk"), ("X-API-Key", admin)]),
            ("two Authorization headers", [("Authorization", "Bearer junk"), ("Authorization", f"Bearer {admin}")]),
            ("key with trailing tab", [("Authorization", f"Bearer {admin}\t")]),
            ("key in quotes", [("Authorization", f'Bearer "{admin}"')]),
            ("SQL in the key id", [("Authorization", "Bearer rk_' OR 1=1 --_x")]),
            ("LIKE wildcard key id", [("Authorization", "Bearer rk_%_x")]),
            ("key with extra underscore parts", [("Authorization", f"Bearer {admin}_extra")]),
            ("key in the query string", []),
            ("widget key, no Origin", [("Authorization", f"Bearer {widget}")]),
        ]
        out = []
        targets = [
            ("GET", "/v1/moments", None),
            ("POST", "/v1/match", J({"moment": "discovery", "limit": 2})),
            ("POST", "/v1/import?kind=influencers", J({**self.influencer(), "id": "inf-auth"})),
            ("GET", "/v1/influencers/inf-julien-domotique", None),
        ]
        for desc, headers in variants:
            for method, path, body in targets:
                if desc == "key in the query string":
                    path += ("&" if "?" in path else "?") + f"key={admin}&api_key={admin}"
                out.append(Case("auth", desc, method, path, body, role=None, headers=headers, origin=None))
        for op in self.protected:
            path = self.path(op)
            body = J(self.example(op)) if op.json_body else (b"{}\n" if op.lines else None)
            out.append(Case("auth", "no key", op.method, path, body, role=None))
            if "widget" not in op.roles:
                out.append(
                    Case(
                        "auth",
                        "widget key from its origin on a route it may not call",
                        op.method,
                        path,
                        body,
                        role="widget",
                    )
                )
            if "planner" not in op.roles:
                out.append(Case("auth", "planner key on an admin route", op.method, path, body, role="planner"))
            else:
                out.append(
                    Case(
                        "auth",
                        "revoked key",
                        op.method,
                        path,
                        body,
                        role=None,
                        headers=[("Authorization", f"Bearer {revoked}")],
                    )
                )
        return out

    def raw(self, port: int, admin: str) -> list[Case]:
        host = f"Host: {HOST}:{port}\r\n".encode()
        close = b"Connection: close\r\n"
        auth = f"Authorization: Bearer {admin}\r\n".encode()
        body = J({"moment": "discovery", "limit": 2})
        post = b"POST /v1/match HTTP/1.1\r\n" + host + auth + close + b"Content-Type: application/json\r\n"
        requests = [
            ("request line over 8 KB", b"GET /health?" + b"a" * 9000 + b" HTTP/1.1\r\n" + host + close + b"\r\n"),
            (
                "request line of 8190 bytes",
                b"GET /health?" + b"a" * (8190 - 25) + b" HTTP/1.1\r\n" + host + close + b"\r\n",
            ),
            (
                "request line over 8 KB on a key route",
                b"GET /v1/match?moment=discovery&query="
                + b"a" * 9000
                + b" HTTP/1.1\r\n"
                + host
                + auth
                + close
                + b"\r\n",
            ),
            (
                "header over 8 KB",
                b"GET /health HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 9000 + b"\r\n" + close + b"\r\n",
            ),
            (
                "Authorization over 8 KB",
                b"GET /v1/moments HTTP/1.1\r\n"
                + host
                + b"Authorization: Bearer rk_"
                + b"a" * 9000
                + b"\r\n"
                + close
                + b"\r\n",
            ),
            (
                "200 headers",
                b"GET /health HTTP/1.1\r\n"
                + host
                + b"".join(b"X-H%d: v\r\n" % n for n in range(200))
                + close
                + b"\r\n",
            ),
            (
                "100 headers",
                b"GET /health HTTP/1.1\r\n" + host + b"".join(b"X-H%d: v\r\n" % n for n in range(98)) + close + b"\r\n",
            ),
            ("invalid HTTP version 9.9", b"GET /health HTTP/9.9\r\n" + host + close + b"\r\n"),
            ("HTTP/2.0 in an HTTP/1 request line", b"GET /health HTTP/2.0\r\n" + host + close + b"\r\n"),
            ("HTTP/1.2", b"GET /health HTTP/1.2\r\n" + host + close + b"\r\n"),
            ("version HTTP/1", b"GET /health HTTP/1\r\n" + host + close + b"\r\n"),
            ("lower-case version", b"GET /health http/1.1\r\n" + host + close + b"\r\n"),
            ("protocol FOO/1.1", b"GET /health FOO/1.1\r\n" + host + close + b"\r\n"),
            ("no version (HTTP/0.9)", b"GET /health\r\n\r\n"),
            ("no Host, HTTP/1.1", b"GET /health HTTP/1.1\r\n" + close + b"\r\n"),
            ("no Host, on a key route", b"GET /v1/moments HTTP/1.1\r\n" + auth + close + b"\r\n"),
            ("no Host, HTTP/1.0", b"GET /health HTTP/1.0\r\n\r\n"),
            ("two Host headers", b"GET /health HTTP/1.1\r\n" + host + b"Host: evil.example\r\n" + close + b"\r\n"),
            ("Host with a path and NUL", b"GET /health HTTP/1.1\r\nHost: a/b\x00c\r\n" + close + b"\r\n"),
            ("absolute URI", b"GET http://evil.example/health HTTP/1.1\r\n" + host + close + b"\r\n"),
            (
                "absolute URI to a key route",
                b"GET http://evil.example/v1/moments HTTP/1.1\r\n" + host + auth + close + b"\r\n",
            ),
            ("target *", b"GET * HTTP/1.1\r\n" + host + close + b"\r\n"),
            ("empty target", b"GET  HTTP/1.1\r\n" + host + close + b"\r\n"),
            ("target without /", b"GET health HTTP/1.1\r\n" + host + close + b"\r\n"),
            ("an empty request", b"\r\n\r\n"),
            ("garbage bytes", bytes(range(256)) * 4),
            ("TLS hello on the plain port", bytes.fromhex("16030100a5010000a10303") + b"\x00" * 100),
            ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            ("a header without colon", b"GET /health HTTP/1.1\r\n" + host + b"NoColonHere\r\n" + close + b"\r\n"),
            ("space before the colon", b"GET /health HTTP/1.1\r\n" + host + b"X-A : b\r\n" + close + b"\r\n"),
            (
                "obs-fold continuation",
                b"GET /health HTTP/1.1\r\n" + host + b"X-A: b\r\n  continued\r\n" + close + b"\r\n",
            ),
            ("NUL in a header value", b"GET /health HTTP/1.1\r\n" + host + b"X-A: a\x00b\r\n" + close + b"\r\n"),
            ("NUL in the path", b"GET /v1/influencers/a\x00b HTTP/1.1\r\n" + host + auth + close + b"\r\n"),
            ("space in the path", b"GET /v1/influencers/a b HTTP/1.1\r\n" + host + auth + close + b"\r\n"),
            ("tab separators", b"GET\t/health\tHTTP/1.1\r\n" + host + close + b"\r\n"),
            ("LF-only line ends", b"GET /health HTTP/1.1\n" + host.replace(b"\r\n", b"\n") + b"Connection: close\n\n"),
            ("bare CR in a header", b"GET /health HTTP/1.1\r\n" + host + b"X-A: a\rb\r\n" + close + b"\r\n"),
            (
                "Content-Length and Transfer-Encoding",
                post
                + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                + f"{len(body):x}\r\n".encode()
                + body
                + b"\r\n0\r\n\r\n",
            ),
            ("negative Content-Length", post + b"Content-Length: -1\r\n\r\n" + body),
            ("Content-Length not a number", post + b"Content-Length: abc\r\n\r\n" + body),
            ("Content-Length 2**70", post + f"Content-Length: {2**70}\r\n\r\n".encode() + body),
            (
                "two different Content-Lengths",
                post + b"Content-Length: 5\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
            ),
            ("Content-Length with a plus", post + b"Content-Length: +%d\r\n\r\n" % len(body) + body),
            ("bad chunk size", post + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n"),
            ("chunk size overflow", post + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n" + body),
            (
                "chunk extensions",
                post
                + b"Transfer-Encoding: chunked\r\n\r\n"
                + f"{len(body):x};a=b".encode()
                + b"\r\n"
                + body
                + b"\r\n0\r\n\r\n",
            ),
            ("Transfer-Encoding gzip", post + b"Transfer-Encoding: gzip\r\n\r\n" + body),
            ("Transfer-Encoding chunked twice", post + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
            (
                "Content-Encoding gzip, plain body",
                post + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
            ),
            ("Expect: 100-continue", post + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body) + body),
            ("Expect: garbage", post + b"Expect: 999-weird\r\nContent-Length: %d\r\n\r\n" % len(body) + body),
            (
                "Upgrade: h2c",
                b"GET /health HTTP/1.1\r\n" + host + b"Connection: Upgrade, HTTP2-Settings\r\n"
                b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
            ),
            (
                "Upgrade: websocket",
                b"GET /v1/moments HTTP/1.1\r\n" + host + auth + b"Connection: Upgrade\r\n"
                b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            ),
            ("pipelined: valid then garbage", b"GET /health HTTP/1.1\r\n" + host + b"\r\n" + bytes(range(1, 200))),
            (
                "pipelined: two requests",
                b"GET /health HTTP/1.1\r\n" + host + b"\r\nGET /health HTTP/1.1\r\n" + host + close + b"\r\n",
            ),
            ("a method of 100 chars", b"X" * 100 + b" /health HTTP/1.1\r\n" + host + close + b"\r\n"),
            ("a method with a slash", b"G/T /health HTTP/1.1\r\n" + host + close + b"\r\n"),
            (
                "UTF-8 in the request line",
                "GET /v1/influencers/é🦄 HTTP/1.1\r\n".encode() + host + auth + close + b"\r\n",
            ),
            ("latin-1 byte in the path", b"GET /v1/influencers/\xe9 HTTP/1.1\r\n" + host + auth + close + b"\r\n"),
            ("a header name with a space", b"GET /health HTTP/1.1\r\n" + host + b"X A: b\r\n" + close + b"\r\n"),
            ("a header name of non-ASCII", b"GET /health HTTP/1.1\r\n" + host + b"X-\xc3\xa9: b\r\n" + close + b"\r\n"),
            ("an empty header name", b"GET /health HTTP/1.1\r\n" + host + b": b\r\n" + close + b"\r\n"),
        ]
        out = [
            Case("raw", desc, _method_of(data), _target_of(data), raw=data, allow_no_answer=True, timeout=RAW_WAIT_S)
            for desc, data in requests
        ]
        short = post + b"Content-Length: 1000\r\n\r\n" + body
        out.append(
            Case(
                "raw",
                "body shorter than Content-Length, then half-close",
                "POST",
                "/v1/match",
                raw=short,
                allow_no_answer=True,
                shut_write=True,
                timeout=RAW_WAIT_S,
            )
        )
        # An upload cut short: the client sent 5 of the lines it announced, then went away.
        lines = b"".join(J({**self.influencer(), "id": f"inf-cut-{n}"}) + b"\n" for n in range(5))
        cut = (
            b"POST /v1/import?kind=influencers HTTP/1.1\r\n"
            + host
            + auth
            + close
            + b"Content-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n" % (len(lines) * 10)
            + lines
        )
        out.append(
            Case(
                "raw",
                "import cut short: 5 lines of the 50 announced, then half-close",
                "POST",
                "/v1/import?kind=influencers",
                raw=cut,
                allow_no_answer=True,
                shut_write=True,
                timeout=RAW_WAIT_S,
            )
        )
        # Broken chunked framing on routes that read their body.
        for path, payload in (
            ("/v1/match", body),
            ("/v1/events", J({"events": [self.event()]})),
            ("/v1/import?kind=influencers", lines),
        ):
            start = b"POST " + path.encode() + b" HTTP/1.1\r\n" + host + auth + close
            start += b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            framings = [
                ("bad chunk size", b"zz\r\n" + payload + b"\r\n0\r\n\r\n"),
                ("negative chunk size", b"-5\r\n" + payload + b"\r\n0\r\n\r\n"),
                ("chunk longer than its size", b"2\r\n" + payload + b"\r\n0\r\n\r\n"),
                ("chunk without its CRLF", f"{len(payload):x}\r\n".encode() + payload + b"XX0\r\n\r\n"),
                ("no last chunk, then half-close", f"{len(payload):x}\r\n".encode() + payload + b"\r\n"),
            ]
            for desc, framed in framings:
                out.append(
                    Case(
                        "raw",
                        f"chunked: {desc}",
                        "POST",
                        path,
                        raw=start + framed,
                        allow_no_answer=True,
                        shut_write=desc.endswith("half-close"),
                        timeout=RAW_WAIT_S,
                    )
                )
        return out

    def destructive(self) -> list[Case]:
        """Deletes of the examples (last: other groups use them), each twice, and the cleanup of what was made."""
        out = []
        order = [
            ("DELETE", "/v1/plans/{plan_id}"),
            ("DELETE", "/v1/activations/{activation_id}"),
            ("DELETE", "/v1/campaigns/{campaign_id}"),
            ("DELETE", "/v1/influencers/{influencer_id}/hold"),
            ("DELETE", "/v1/content/{record_id}"),
            ("DELETE", "/v1/influencers/{record_id}"),
        ]
        for method, template in order:
            op = self.op(method, template)
            for n in range(2):
                out.append(
                    Case(
                        "delete",
                        "delete the example" + (" again" if n else ""),
                        method,
                        self.path(op),
                        role=self.role_for(op),
                    )
                )
        for record in ("inf-hostile-strings", "inf-hostile-enc", "inf-hostile-big", "inf-jsonl-ok", "inf-csv-1"):
            out.append(Case("delete", "delete what the run made", "DELETE", f"/v1/influencers/{record}"))
        return out


def _method_of(raw: bytes) -> str:
    return raw.split(b" ", 1)[0][:20].decode("latin-1") if b" " in raw[:120] else "?"


def _target_of(raw: bytes) -> bytes:
    parts = raw.split(b"\r\n", 1)[0].split(b" ")
    return parts[1][:200] if len(parts) > 1 else raw[:40]


def _set(body: Any, where: tuple[Any, ...], value: Any) -> None:
    for key in where[:-1]:
        body = body[key]
    body[where[-1]] = value


# -- the run ------------------------------------------------------------------------------------------------------


def setup(client: Client, cases: Cases) -> list[Answer]:
    """The records the examples name, so that the routes that take an id reach their code: the influencer and
    content the PUT examples write, the example campaign and activation, and a plan (its id is made)."""
    done = []
    for method, template in (
        ("PUT", "/v1/influencers/{record_id}"),
        ("PUT", "/v1/content/{record_id}"),
        ("POST", "/v1/campaigns"),
        ("POST", "/v1/activations"),
        ("POST", "/v1/plans"),
    ):
        op = cases.op(method, template)
        answer = client.send(Case("setup", "make the example", method, op.path(), J(op.example)))
        done.append(answer)
        if template == "/v1/plans" and answer.status == 201:
            cases.ids["plan_id"] = json.loads(answer.body)["id"]
        elif answer.status not in (200, 201):
            print(f"setup: {method} {template} answered {answer.status}: {answer.body[:200]!r}")
    return done


def run_all(client: Client, cases: list[Case], parallel: int, verbose: bool) -> list[Answer]:
    started, count = time.perf_counter(), [0]
    lock = threading.Lock()

    def one(case: Case) -> Answer:
        answer = client.send(case)
        with lock:
            count[0] += 1
            if verbose:
                print(
                    f"  {answer.status or '---'} {answer.seconds * 1000:7.0f} ms  {case.group:9} {case.method} "
                    f"{answer.path[:80]}  ({case.desc})",
                    flush=True,
                )
            elif count[0] % 500 == 0:
                print(f"  {count[0]} requests, {time.perf_counter() - started:.0f} s", flush=True)
        return answer

    if parallel <= 1:
        return [one(c) for c in cases]
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, cases))


def write_answers(path: Path, answers: list[Answer]) -> None:
    with path.open("w") as out:
        for a in answers:
            row = {
                "group": a.case.group,
                "case": a.case.desc,
                "method": a.method,
                "path": a.path,
                "role": a.case.role,
                "status": a.status,
                "ms": round(a.seconds * 1000, 1),
                "error": a.error,
                "request_id": a.headers.get("x-request-id"),
                "body": a.body[:300].decode("utf-8", "replace"),
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def server_log_findings(log: Path) -> tuple[list[str], list[str]]:
    """Exceptions the server logged (distinct, with counts) and signs of workers dying or being killed."""
    exceptions: collections.Counter[str] = collections.Counter()
    workers = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if re.search(r"WORKER TIMEOUT|was sent SIG|exited with code|Booting worker|Worker exiting|Traceback", line):
                workers.append(line.strip()[:200])
            continue
        message = str(record.get("message", ""))
        if re.search(r"WORKER TIMEOUT|was sent SIG|exited with code|Booting worker|Worker exiting", message):
            workers.append(message[:200])
        if record.get("level") in ("ERROR", "CRITICAL"):
            last = (record.get("exception") or "").strip().splitlines()
            exceptions[f"{record.get('logger')}: {message[:100]} | {last[-1][:200] if last else ''}"] += 1
    return [f"{n} x {text}" for text, n in exceptions.most_common()], workers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=4, help="requests in flight at once (1: one after another)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and the server's log")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every request as it is answered")
    parser.add_argument("--answers", type=Path, help="write every case and its answer here (JSON Lines)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="relais-hostile-"))
    data, log = work / "data", work / "server.log"
    served = None
    try:
        started = time.perf_counter()
        matcher("load", "--data-dir", str(data), str(FIXTURES / "influencers.jsonl"), str(FIXTURES / "content.jsonl"))
        keys = {
            role: matcher(
                "keys",
                "create",
                "--role",
                role,
                "--data-dir",
                str(data),
                "--label",
                f"hostile {role}",
                *[a for o in WIDGET_ORIGINS for a in ("--origin", o)] * (role == "widget"),
            ).stdout.strip()
            for role in ("admin", "planner", "widget")
        }
        revoked = matcher("keys", "create", "--role", "admin", "--data-dir", str(data)).stdout.strip()
        matcher("keys", "revoke", revoked.split("_")[1], "--data-dir", str(data))
        served = Served(data, log, args.workers, args.threads)
        print(
            f"loaded the fixtures, made the keys and started {args.workers} workers x {args.threads} threads in "
            f"{time.perf_counter() - started:.0f} s ({work})",
            flush=True,
        )
        client = Client(served.port, keys)
        ops = operations(client)
        print(f"{len(ops)} operations in /openapi.json: " + ", ".join(map(str, ops)))
        cases = Cases(ops, {})
        answers = setup(client, cases)
        groups = [
            cases.baseline(),
            cases.origins(),
            cases.nesting(),
            cases.numbers(),
            cases.strings(),
            cases.weird_ids(),
            cases.imports(),
            cases.protocol(),
            cases.auth(keys, revoked),
            cases.raw(served.port, keys["admin"]),
        ]
        planned = [c for g in groups for c in g]
        print(f"{len(planned)} cases, {args.parallel} at a time", flush=True)
        started = time.perf_counter()
        answers += run_all(client, planned, args.parallel, args.verbose)
        answers += run_all(client, cases.destructive(), 1, args.verbose)
        print(f"sent {len(answers)} requests in {time.perf_counter() - started:.0f} s", flush=True)
        if args.answers:
            write_answers(args.answers, answers)

        # Still alive, every worker?
        try:
            alive = served.processes_answering(4 * args.workers)
            health_ok = bool(alive) and served.health()[0] == 200
        except (OSError, ValueError, http.client.HTTPException) as e:
            alive, health_ok = set(), False
            print(f"GET /health failed: {e!r}")
        served.stop()
        served = None
        checked = matcher("check", "--data-dir", str(data), check=False)
        exceptions, worker_events = server_log_findings(log)
        return report(answers, health_ok, alive, args.workers, checked, exceptions, worker_events, work, args.keep)
    finally:
        if served is not None:
            served.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(
    answers: list[Answer],
    health_ok: bool,
    alive: set[int],
    workers: int,
    checked: subprocess.CompletedProcess,
    exceptions: list[str],
    worker_events: list[str],
    work: Path,
    keep: bool,
) -> int:
    by_status = collections.Counter(a.status for a in answers)
    by_group: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for a in answers:
        by_group[a.case.group][a.status] += 1
    print("\nstatus  count")
    for status, n in sorted(by_status.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        print(f"{status if status is not None else 'none':>6}  {n}")
    print(
        "\nper group: "
        + "; ".join(
            f"{g} " + ", ".join(f"{s or 'none'}:{n}" for s, n in sorted(c.items(), key=lambda kv: kv[0] or 0))
            for g, c in by_group.items()
        )
    )

    server_errors = [a for a in answers if a.status is not None and a.status >= 500]
    print(f"\n5xx answers: {len(server_errors)}")
    for a in server_errors:
        print(
            f"  {a.status} {a.method} {a.path}\n      case: [{a.case.group}] {a.case.desc}\n      "
            f"request id {a.headers.get('x-request-id', '-')}; body: {a.body[:200]!r}"
        )

    shape = [(a, p) for a in answers for p in problems_of(a) if not p.isdigit()]
    print(f"\nother broken answers (error shape, no answer): {len(shape)}")
    for a, problem in shape:
        print(
            f"  {a.status} {a.method} {a.path}\n      case: [{a.case.group}] {a.case.desc}\n      {problem}; "
            f"body: {a.body[:200]!r}"
        )

    unanswered = [a for a in answers if a.status is None and a.case.allow_no_answer]
    if unanswered:
        print(f"\nno answer (acceptable for garbage on the wire, not counted as failures): {len(unanswered)}")
        for a in unanswered:
            held = "timed out" in a.error.lower()
            what = f"connection held open {a.case.timeout:.0f} s without an answer" if held else a.error
            print(f"  [{a.case.group}] {a.case.desc}: {what}")
    print("\nnotes (not counted as failures):")
    for line in notes_of(answers) or ["none"]:
        print(f"  {line}")
    if exceptions:
        print("\nthe server logged errors:")
        for line in exceptions:
            print(f"  {line}")
    if worker_events:
        print("\nworker events in the server's log (after start):")
        for line in worker_events:
            print(f"  {line}")
    print(
        f"\nafter the run: /health {'200' if health_ok else 'FAILED'} from {len(alive)} of {workers} workers; "
        f"matcher check exit {checked.returncode}"
    )
    if checked.returncode != 0:
        print((checked.stdout + checked.stderr)[-3000:])
    if keep:
        print(f"kept: {work} (data/, server.log)")

    failed_shape = len(shape)
    if server_errors or failed_shape or not health_ok or checked.returncode != 0:
        print(
            f"\nFAILED: {len(answers)} requests, {len(server_errors)} 5xx, {failed_shape} other broken answers, "
            f"health {'ok' if health_ok else 'FAILED'}, check exit {checked.returncode}"
        )
        return 1
    print(f"\nOK: {len(answers)} requests, 0 5xx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
