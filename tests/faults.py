"""A fault-injecting HTTP proxy, placed between cloudshift and a real local server.

It forwards every request to the upstream server unless a rule says otherwise: answer
503/429/500/502 itself, reset the connection, stall, truncate the response body, flip a
byte of the request or response body, or run a hook (e.g. change the source object) before
forwarding. Rules match by method, path regex, and rate (seeded) or the n-th match. Every
request is logged, so tests can count what reached the server.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade", "content-length"}

STATUS_BODIES = {
    503: b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
         b"<Message>Please reduce your request rate.</Message></Error>",
    429: b'{"error": {"code": 429, "message": "rate limit exceeded (injected)"}}',
    500: b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
         b"<Message>We encountered an internal error (injected).</Message></Error>",
    502: b"Bad Gateway (injected)",
    403: b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
         b"<Message>Access Denied (injected)</Message></Error>",
}


@dataclass
class Rule:
    fault: str  # "503" "429" "500" "502" "403" reset stall truncate flip-request flip-response hook
    rate: float = 1.0
    method: str | None = None
    path: str | None = None
    nth: frozenset[int] | None = None
    limit: int | None = None
    stall_s: float = 5.0
    hook: Callable[[str, str], None] | None = None
    seen: int = 0
    applied: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclass
class Logged:
    method: str
    path: str
    fault: str | None
    reached: bool  # did the request reach the upstream server
    status: int | None
    at: float = field(default_factory=time.monotonic)


class FaultProxy:
    def __init__(self, upstream: str, seed: int = 1234) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.upstream_netloc = parts.netloc
        self.rules: list[Rule] = []
        self.log: list[Logged] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self)

            do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_GET

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients killed mid-request (the point of some tests) break pipes

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # --- test API -------------------------------------------------------------------------
    def add(self, fault: str, **kwargs: object) -> Rule:
        if "nth" in kwargs and kwargs["nth"] is not None:
            kwargs["nth"] = frozenset(kwargs["nth"])  # type: ignore[arg-type]
        rule = Rule(fault, **kwargs)  # type: ignore[arg-type]
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self, log: bool = False) -> None:
        with self._lock:
            self.rules.clear()
            if log:
                self.log.clear()

    def count(self, method: str | None = None, path: str | None = None,
              fault: str | None = None, reached: bool | None = True) -> int:
        with self._lock:
            return sum(1 for e in self.log
                       if (method is None or e.method == method)
                       and (path is None or re.search(path, e.path))
                       and (fault is None or e.fault == fault)
                       and (reached is None or e.reached == reached))

    def faults(self) -> dict[str, int]:
        out: dict[str, int] = {}
        with self._lock:
            for e in self.log:
                if e.fault:
                    out[e.fault] = out.get(e.fault, 0) + 1
        return out

    def report(self, test: str) -> None:
        """Append what was injected to $CLOUDSHIFT_FAULT_LOG (JSON Lines), if set: the
        numbers behind docs/reliability.md."""
        path = os.environ.get("CLOUDSHIFT_FAULT_LOG")
        if not path:
            return
        with self._lock:
            line = {"test": test, "requests": len(self.log),
                    "reached_server": sum(1 for e in self.log if e.reached),
                    "faults": {}}
        line["faults"] = self.faults()
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the proxy ------------------------------------------------------------------------
    def _pick(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path):
                    continue
                rule.seen += 1
                if rule.limit is not None and rule.applied >= rule.limit:
                    continue
                hit = (rule.seen in rule.nth) if rule.nth is not None else (
                    self._rng.random() < rule.rate)
                if hit:
                    rule.applied += 1
                    return rule
        return None

    def _record(self, method: str, path: str, fault: str | None, reached: bool,
                status: int | None) -> None:
        with self._lock:
            self.log.append(Logged(method, path, fault, reached, status))

    def _flip(self, data: bytes) -> bytes:
        if not data:
            return data
        with self._lock:
            i = self._rng.randrange(len(data))
        return data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        method, path = h.command, h.path
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rule = self._pick(method, path)
        fault = rule.fault if rule else None
        if rule is not None and fault in ("503", "429", "500", "502", "403"):
            status = int(fault)
            payload = STATUS_BODIES[status]
            self._record(method, path, fault, False, status)
            h.send_response(status)
            h.send_header("Content-Length", str(len(payload)))
            h.send_header("Content-Type", "application/xml")
            if status in (503, 429):
                h.send_header("Retry-After", "0")
            h.end_headers()
            if method != "HEAD":
                h.wfile.write(payload)
            return
        if fault == "reset":
            self._record(method, path, fault, False, None)
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            h.close_connection = True
            h.connection.close()
            return
        if rule is not None and fault == "hook" and rule.hook is not None:
            rule.hook(method, path)
        if fault == "flip-request":
            body = self._flip(body)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or method in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read() if method != "HEAD" else b""
            resp_headers = resp.getheaders()
            status = resp.status
        finally:
            conn.close()
        self._record(method, path, fault, True, status)
        if fault == "stall" and rule is not None:
            time.sleep(rule.stall_s)
        if fault == "flip-response":
            data = self._flip(data)
        h.send_response(status)
        length_header = None
        for k, v in resp_headers:
            lk = k.lower()
            if lk == "content-length":
                length_header = v
                continue
            if lk in HOP_BY_HOP or lk in ("date", "server"):
                continue
            if lk == "location":
                v = v.replace(self.upstream_netloc, f"127.0.0.1:{self.port}")
            h.send_header(k, v)
        h.send_header("Content-Length", length_header if method == "HEAD" and length_header
                      else str(len(data)))
        h.end_headers()
        if method == "HEAD":
            return
        if fault == "truncate" and len(data) > 1:
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.wfile.write(data)
