"""A small closed-loop HTTP load generator for loopback servers (the launch benchmark's).

Requests are built before the clock starts (raw HTTP/1.1 bytes, one connection each, as a
browser's form POST arrives at a gunicorn sync worker). ``concurrency`` threads each send
one request, read the whole response, check it, and send the next, until the list is used
up or ``max_seconds`` have passed. Latency is from connect to the last byte read.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

__all__ = ["LoadResult", "form_post", "run_load"]


def form_post(port: int, path: str, form: dict[str, str], cookies: dict[str, str]) -> bytes:
    """A complete HTTP/1.1 form POST, ready to send on a fresh connection."""
    body = urlencode(form).encode()
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "Connection: close\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class LoadResult:
    """What one load run measured."""

    elapsed: float
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def run_load(
    port: int, requests: list[bytes], marker: bytes, *, concurrency: int, max_seconds: float
) -> LoadResult:
    """Send ``requests``; a response counts only if it is a 200 containing ``marker``."""
    counter = itertools.count()  # thread-safe in CPython: each request is sent once
    lock = threading.Lock()
    result = LoadResult(elapsed=0.0)
    deadline = time.perf_counter() + max_seconds

    def client() -> None:
        latencies: list[float] = []
        failures: list[str] = []
        while (index := next(counter)) < len(requests) and time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = _exchange(port, requests[index])
            except OSError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            took = time.perf_counter() - started
            head, _, body = response.partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.1 200") and marker in body:
                latencies.append(took)
            else:
                failures.append(response[:600].decode(errors="replace"))
        with lock:
            result.latencies.extend(latencies)
            result.failures.extend(failures)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - started
    return result
