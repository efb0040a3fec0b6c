"""The benchmark's load generator: keep-alive HTTP/1.1 POSTs from a request file, run in its own process.

``python bench/loadgen.py closed --port P --file F --count N --clients C``
    closed loop: C connections, each posts its next request as soon as the previous one answered,
    until N answers; prints the rate and the answer times (p50, p99: from send to last byte).
``python bench/loadgen.py open --port P --file F --count N --rate R``
    open loop: request i is due at start + i / R whatever happened before; latency is measured from
    that due time to the last byte of the answer, so a stalled server is charged for the requests
    that queued behind it (no coordinated omission). Connections come from a FIFO pool that grows
    as needed (up to ``--max-connections``). With ``--timeout S`` a request unanswered S seconds
    after it was sent is given up (its connection closed), counted under status ``timeout`` and
    charged its latency so far, so a server that stops answering ends the run instead of hanging it.

One asyncio loop in one thread: no GIL hand-offs between client threads to blur the latencies.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import deque


def read_requests(path: str, port: int) -> list[bytes]:
    out = []
    with open(path, "rb") as lines:
        for line in lines:
            signature, _, body = line.rstrip(b"\n").partition(b"\t")
            head = (f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                    f"X-Hub-Signature-256: {signature.decode()}\r\nContent-Length: {len(body)}\r\n\r\n")
            out.append(head.encode() + body)
    return out


class Connection:
    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> tuple[int, bool]:
        """Send one request, read its answer; returns (status, reconnected)."""
        reconnected = False
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                self.writer.write(request)
                return await self._answer(), reconnected
            except (ConnectionError, asyncio.IncompleteReadError):
                # the server closed an idle keep-alive connection: retry once on a fresh one
                self.close()
                if attempt == 2:
                    raise
                reconnected = True
        raise AssertionError("unreachable")

    async def _answer(self) -> int:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def closed_loop(port: int, requests: list[bytes], count: int, clients: int) -> dict:
    pending = iter(requests[:count])
    statuses: dict[int, int] = {}
    reconnects = 0
    latencies: list[float] = []

    async def client() -> None:
        nonlocal reconnects
        connection = Connection(port)
        for request in pending:
            sent = time.perf_counter()
            status, again = await connection.post(request)
            latencies.append(time.perf_counter() - sent)
            statuses[status] = statuses.get(status, 0) + 1
            reconnects += again
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    done = sum(statuses.values())
    ordered = sorted(latencies)
    return {"mode": "closed", "requests": done, "clients": clients, "elapsed_s": elapsed,
            "rate_per_s": done / elapsed, "statuses": statuses, "reconnects": reconnects,
            "started_monotonic": time.monotonic() - elapsed,
            "p50_ms": percentile(ordered, 0.50) * 1000, "p99_ms": percentile(ordered, 0.99) * 1000}


async def open_loop(port: int, requests: list[bytes], count: int, rate: float, max_connections: int,
                    timeout_seconds: float = 0.0) -> dict:
    idle: deque[Connection] = deque()
    opened = 0
    available = asyncio.Condition()
    latencies: list[float] = []
    statuses: dict[int | str, int] = {}
    unanswered: list[int] = []  # indexes of the requests not answered 200 (a timeout, an error)
    reconnects = 0

    async def acquire() -> Connection:
        nonlocal opened
        async with available:
            while not idle and opened >= max_connections:
                await available.wait()
            if idle:
                return idle.popleft()
            opened += 1
            return Connection(port)

    async def release(connection: Connection) -> None:
        async with available:
            idle.append(connection)  # FIFO: every connection stays warm, none idles out
            available.notify()

    async def one(index: int, request: bytes, due: float) -> None:
        nonlocal reconnects
        connection = await acquire()
        status: int | str
        try:
            status, again = await asyncio.wait_for(connection.post(request), timeout_seconds or None)
        except TimeoutError:
            connection.close()  # its answer may still come: never reuse it (it reconnects when taken)
            status, again = "timeout", False
        finally:
            await release(connection)
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1
        if status != 200:
            unanswered.append(index)
        reconnects += again

    loop_start = time.perf_counter() + 0.05
    tasks = []
    for index, request in enumerate(requests[:count]):
        due = loop_start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(index, request, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - loop_start
    for connection in idle:
        connection.close()
    ordered = sorted(latencies)
    return {"mode": "open", "requests": len(ordered), "target_rate_per_s": rate,
            "achieved_rate_per_s": len(ordered) / elapsed, "elapsed_s": elapsed,
            "p50_ms": percentile(ordered, 0.50) * 1000, "p90_ms": percentile(ordered, 0.90) * 1000,
            "p99_ms": percentile(ordered, 0.99) * 1000, "max_ms": ordered[-1] * 1000 if ordered else None,
            "connections": opened, "statuses": statuses, "reconnects": reconnects, "unanswered": sorted(unanswered)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("closed", "open"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="open loop: give a request up after this many seconds (0: wait for ever)")
    args = parser.parse_args(argv)
    requests = read_requests(args.file, args.port)
    if len(requests) < args.count:
        parser.error(f"{args.file} has {len(requests)} requests; --count asks for {args.count}")
    if args.mode == "closed":
        result = asyncio.run(closed_loop(args.port, requests, args.count, args.clients))
    else:
        if args.rate <= 0:
            parser.error("open loop needs --rate > 0 (requests per second)")
        result = asyncio.run(open_loop(args.port, requests, args.count, args.rate, args.max_connections,
                                       args.timeout))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
