"""A real Prometheus (Debian's `prometheus`) scraping one target on loopback, queried through its HTTP API.

Started in a temp dir with a one-target config and a one-second scrape interval, stopped by its PID. A missing
binary skips the test, except in CI (`CI=true`), where it fails: .ci/run installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import free_port

STARTUP_TIMEOUT = 60.0


def prometheus_binary() -> str:
    path = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or shutil.which("prometheus", path="/usr/bin")
    if not path:
        message = "prometheus is not installed (.ci/run installs Debian's package); or set PROMETHEUS_BIN"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class PrometheusServer:
    """Prometheus scraping `target` (host:port) every second; `query` asks it for an instant vector."""

    directory: Path
    target: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "prometheus.log"

    def start(self) -> PrometheusServer:
        binary = prometheus_binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
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
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/-/ready", timeout=2, trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus was not ready within {STARTUP_TIMEOUT}s:\n{self.log_tail()}")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector `promql` evaluates to now: [{"metric": {labels}, "value": [time, "text"]}, ...]."""
        response = httpx.get(
            f"http://127.0.0.1:{self.port}/api/v1/query", params={"query": promql}, timeout=10, trust_env=False
        )
        response.raise_for_status()
        return response.json()["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The single value of `promql`, or None when it has no series (yet)."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def target_health(self) -> str:
        response = httpx.get(f"http://127.0.0.1:{self.port}/api/v1/targets", timeout=10, trust_env=False)
        targets = response.json()["data"]["activeTargets"]
        return ", ".join(f"{t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}" for t in targets)

    def log_tail(self, limit: int = 5000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "<no log>"

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL after a bounded wait."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
