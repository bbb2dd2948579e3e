"""Polite traffic: request-rate and bandwidth limits, and concurrency that backs off when the
provider throttles (429 / 503 SlowDown) and grows back when it stops.

The token bucket is written here rather than taken from a rate-limit library because it
needs three things together: blocking acquisition from many threads, weights far larger
than the burst (a 16 MiB part against a 1 MB/s limit), and borrowing (the bucket goes into
debt and the next caller waits it off), which keeps the long-run rate exact.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


class TokenBucket:
    """``rate`` tokens per second; a burst of at most ``rate / 10`` (100 ms worth)."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate / 10)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: float = 1.0) -> float:
        """Take ``n`` tokens, sleeping as long as the rate requires; returns the wait."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)
        return wait


class AdaptiveConcurrency:
    """At most ``limit`` objects in flight; the limit halves on throttling (at most once a
    second) and grows by one after each ``limit`` successes without throttling (AIMD, as
    TCP does), never above ``maximum``."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = maximum
        self.lowest = maximum
        self._active = 0
        self._successes = 0
        self._last_cut = 0.0
        self._cond = threading.Condition()

    def acquire(self, cancelled: threading.Event | None = None) -> None:
        with self._cond:
            while self._active >= self.limit:
                if cancelled is not None and cancelled.is_set():
                    raise InterruptedError("cancelled")
                self._cond.wait(0.2)
            self._active += 1

    def release(self, ok: bool) -> None:
        with self._cond:
            self._active -= 1
            if ok:
                self._successes += 1
                if self._successes >= self.limit and self.limit < self.maximum:
                    self.limit += 1
                    self._successes = 0
            self._cond.notify_all()

    def throttled(self) -> None:
        with self._cond:
            now = time.monotonic()
            if now - self._last_cut >= 1.0:
                self.limit = max(1, self.limit // 2)
                self.lowest = min(self.lowest, self.limit)
                self._last_cut = now
                self._successes = 0


THROTTLE_STATUS = frozenset({429, 503})


@dataclass
class Traffic:
    """The engine's view of the traffic of one run; backends report every HTTP request
    and response to it (see :class:`cloudshift.storage.base.RequestObserver`)."""

    transfers: int
    max_rps: float | None = None
    bwlimit: float | None = None
    requests: TokenBucket | None = field(init=False, default=None)
    bandwidth: TokenBucket | None = field(init=False, default=None)
    concurrency: AdaptiveConcurrency = field(init=False)
    throttled: int = field(init=False, default=0)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.requests = TokenBucket(self.max_rps) if self.max_rps else None
        self.bandwidth = TokenBucket(self.bwlimit) if self.bwlimit else None
        self.concurrency = AdaptiveConcurrency(self.transfers)

    # RequestObserver
    def before_request(self) -> None:
        if self.requests is not None:
            self.requests.take(1)

    def after_response(self, status: int) -> None:
        if status in THROTTLE_STATUS:
            with self._lock:
                self.throttled += 1
            self.concurrency.throttled()

    def on_bytes(self, n: int) -> None:
        if self.bandwidth is not None:
            self.bandwidth.take(n)
