"""Hostile or unlucky clients, measured: what they cost the service, for several builds in one run.

    python bench/hostile.py --target after=<venv python>:<baked project> --target before=<...>:<...>

Each target is a baked project and the python of its venv; they take turns, against the same scripted upstream.

- dead-reader: `--waves` rounds (2) of `--readers` (100) streams of `chat_stream` whose clients read the response
  headers and then nothing (a 4 KB receive buffer) for `--hold` seconds, then close; the upstream streams
  `--token-bytes` chunks (1 KB) without end, as fast as it can. At each sample: the upstream chunks sent in this
  wave (the service read them, or they wait in the kernel between the two: that column says how many bytes), the
  bytes the kernel holds that the service wrote and its clients did not read, and the service's RSS; then once
  every run closed its LLM stream, and `--settle` seconds after the close. A service that holds its runs back
  stops reading after what its buffers and the sockets' hold; one that does not reads, and keeps, the endless
  answer. Wave 2 shows whether the memory of wave 1 is reused. IDLE_CLIENT_SECONDS=0, which would end the streams.
- big-body: one client posts a chat request of `--messages` tiny messages (3.5 MB for 100,000) while another
  asks `GET /status` over and over: the slowest /status answer is how long the event loop stood still.

Prints Markdown tables; nothing is asserted (tests never assert on time or size).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import procs  # noqa: E402

SAMPLES = (1.0, 2.0, 5.0, 10.0, 15.0)
BIG_BODY_TIMEOUT = 300.0


def start(name: str, argv: list[str], cwd: Path, env: dict[str, str], logs: Path) -> procs.Proc:
    return procs.Proc(name, argv, env, cwd, logs / f"{name}.log").start()


def wait_for(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def tokens_sent(upstream_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{upstream_port}/stats", timeout=5) as response:
        return int(json.load(response)["tokens_sent"])


def dead_reader(port: int, prompt: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    body = json.dumps({"model": "chat_stream", "stream": True, "messages": [{"role": "user", "content": prompt}]})
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(1024)
    return sock


class Service:
    """The baked service of one target, with its own scripted upstream, stopped by PID on exit."""

    def __init__(
        self, name: str, python: Path, project: Path, upstream_script: Path, logs: Path, token_bytes: int = 1024
    ) -> None:
        self.upstream_port, self.port = procs.free_port(), procs.free_port()
        env = {"PATH": os.environ.get("PATH", ""), "HAYSTACK_TELEMETRY_ENABLED": "False", "NO_PROXY": "*"}
        token = "x" * max(token_bytes - 1, 1) + " "  # the upstream streams one word per chunk
        upstream_argv = [sys.executable, str(upstream_script), "--port", str(self.upstream_port), "--text", token]
        self.upstream = start(f"{name}-upstream", [*upstream_argv, "--repeat", str(10**9)], project, env, logs)
        service_env = env | {
            "OPENAI_API_KEY": "bench",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{self.upstream_port}/v1",
            "OPENAI_MODEL": "bench",
            "IDLE_CLIENT_SECONDS": "0",
        }
        hypercorn = [str(python), "-m", "hypercorn", "haystack_service.asgi:app", "--config", "hypercorn.toml"]
        self.proc = start(name, [*hypercorn, "--bind", f"127.0.0.1:{self.port}"], project, service_env, logs)

    def __enter__(self) -> Service:
        wait_for(f"http://127.0.0.1:{self.upstream_port}/stats")
        wait_for(f"http://127.0.0.1:{self.port}/status")
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stop()
        self.upstream.stop()


def kernel_queued(port: int) -> tuple[int, int]:
    """Bytes the kernel holds for TCP connections to `port`: (on the server's side, on its peers' side).

    From /proc/net/tcp{,6}: the server side's tx_queue (written by the server, not yet taken by the peer) and the
    peers' rx_queue (arrived, not yet read by the peer), and the reverse pair. For the upstream's port, the sum is
    what the upstream sent that the service has not read; for the service's, what the service wrote that its
    clients have not read.
    """
    server, peers = 0, 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, queues = (
                int(fields[1].rsplit(":", 1)[1], 16),
                int(fields[2].rsplit(":", 1)[1], 16),
                fields[4],
            )
            tx, rx = (int(value, 16) for value in queues.split(":"))
            if local == port:
                server += tx + rx
            elif remote == port:
                peers += tx + rx
    return server, peers


def stream_count(upstream_port: int) -> int:
    """Streams the upstream is still sending (its client, the service, has not hung up)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{upstream_port}/stats", timeout=5) as response:
        return int(json.load(response)["active_streams"])


def dead_readers(name: str, service: Service, readers: int, waves: int, hold: float, settle: float) -> list[str]:
    """`waves` rounds of `readers` clients that read nothing for `hold` seconds, then close; one row per sample."""
    mb = 2**20
    idle_rss = procs.tree_rss(service.proc.pid)
    rows = []

    def sample(wave: int, label: str, sent_before: int) -> None:
        sent = tokens_sent(service.upstream_port)
        upstream_side = sum(kernel_queued(service.upstream_port))
        client_side = kernel_queued(service.port)[0]
        rss = procs.tree_rss(service.proc.pid)
        rows.append(
            f"| {name} | {wave} | {label} | {sent - sent_before:,} | {(sent - sent_before) / readers:,.0f} "
            f"| {upstream_side / mb:.1f} | {client_side / mb:.1f} | {rss / mb:.0f} | {(rss - idle_rss) / mb:+.0f} |"
        )
        print(rows[-1], flush=True)

    rows.append(f"| {name} | | idle | | | | | {idle_rss / mb:.0f} | |")
    for wave in range(1, waves + 1):
        sent_before = tokens_sent(service.upstream_port)
        sockets = [dead_reader(service.port, f"reader {index}") for index in range(readers)]
        started = time.monotonic()
        for at in (*(point for point in SAMPLES if point < hold), hold):
            time.sleep(max(0.0, started + at - time.monotonic()))
            sample(wave, f"{at:g} s", sent_before)
        for sock in sockets:
            sock.close()
        closed = time.monotonic()
        while stream_count(service.upstream_port) and time.monotonic() < closed + settle:
            time.sleep(0.2)
        sample(wave, "closed", sent_before)  # every run has closed its LLM stream
        time.sleep(max(0.0, closed + settle - time.monotonic()))
        sample(wave, f"closed +{settle:g} s", sent_before)  # the service's memory release has run (after 5 s)
    return rows


def big_body(name: str, service: Service, messages: int) -> list[str]:
    body = json.dumps({"model": "chat_stream", "messages": [{"role": "user", "content": "hi"}] * messages}).encode()
    outcome: dict[str, object] = {}

    def post() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=BIG_BODY_TIMEOUT)
        started = time.perf_counter()
        try:
            connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            outcome["status"] = response.status
        except OSError as error:
            outcome["status"] = f"no answer ({type(error).__name__})"
        outcome["seconds"] = time.perf_counter() - started
        connection.close()

    poster = threading.Thread(target=post)
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=300)
    slowest, answered = 0.0, 0
    poster.start()
    while poster.is_alive():
        started = time.perf_counter()
        connection.request("GET", "/status")
        connection.getresponse().read()
        slowest, answered = max(slowest, time.perf_counter() - started), answered + 1
    poster.join()
    connection.close()
    row = (
        f"| {name} | {messages:,} | {len(body) / 2**20:.1f} | {outcome['status']} | {outcome['seconds']:.2f} "
        f"| {answered} | {slowest * 1000:.0f} |"
    )
    print(row, flush=True)
    return [row]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--target", action="append", required=True, help="NAME=PYTHON:PROJECT (a baked project and its venv's python)"
    )
    parser.add_argument("--scenarios", default="dead-reader,big-body")
    parser.add_argument("--readers", type=int, default=100, help="dead-reader: clients that stop reading, at once")
    parser.add_argument("--waves", type=int, default=2, help="dead-reader: rounds of readers, one after the other")
    parser.add_argument("--hold", type=float, default=20.0, help="dead-reader: seconds the readers stay open")
    parser.add_argument("--settle", type=float, default=10.0, help="dead-reader: seconds to wait after they close")
    parser.add_argument("--token-bytes", type=int, default=1024, help="dead-reader: bytes of text per upstream chunk")
    parser.add_argument("--messages", type=int, default=100_000, help="big-body: messages in the one request")
    parser.add_argument("--upstream", type=Path, help="the scripted upstream (default: the first project's)")
    args = parser.parse_args(argv)
    targets = []
    for spec in args.target:
        name, _, rest = spec.partition("=")
        python, _, project = rest.partition(":")
        targets.append((name, Path(python), Path(project)))
    upstream_script = args.upstream or procs.upstream_script(targets[0][2])
    logs = BENCH / ".work" / "logs"
    scenarios = args.scenarios.split(",")
    tables = {
        "dead-reader": [
            f"{args.waves} waves of {args.readers} clients that read nothing for {args.hold:g} s, then close; the"
            f" upstream streams {args.token_bytes}-byte chunks without end. Chunks: sent by the upstream in this wave;"
            " kernel: bytes queued in the TCP buffers between the upstream and the service (sent, not yet read by"
            " the service) and between the service and its clients (written, not yet read by the clients)",
            "",
            "| target | wave | at | upstream chunks | per stream | kernel upstream→service (MB) "
            "| kernel service→clients (MB) | RSS (MB) | RSS over idle (MB) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ],
        "big-body": [
            "One request of many tiny messages, while another client asks GET /status over and over",
            "",
            "| target | messages | MB | status | its seconds | /status answered meanwhile | slowest /status (ms) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ],
    }
    try:
        for name, python, project in targets:
            with Service(name, python, project, upstream_script, logs, args.token_bytes) as service:
                if "dead-reader" in scenarios:
                    tables["dead-reader"] += dead_readers(
                        name, service, args.readers, args.waves, args.hold, args.settle
                    )
                if "big-body" in scenarios:
                    tables["big-body"] += big_body(name, service, args.messages)
    finally:
        procs.stop_all()
    for scenario in scenarios:
        print("\n" + "\n".join(tables[scenario]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
