"""A real `fusebox serve` for the tests: the built binary (FUSEBOX_BIN, else the workspace's
target/debug/fusebox), a temporary SQLite file, an admin and ingest keys made with the CLI.
Waiting is always for a condition, with a deadline."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BIN = os.environ.get("FUSEBOX_BIN") or str(Path(__file__).resolve().parents[3] / "target" / "debug" / "fusebox")


def wait_for(what: str, deadline_s: float, check):
    """Polls ``check`` until it returns something truthy; fails after ``deadline_s``."""
    until = time.monotonic() + deadline_s
    last = None
    while True:
        try:
            last = check()
            if last:
                return last
        except Exception as error:  # a check that cannot answer yet (server restarting)
            last = error
        if time.monotonic() > until:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what} (last: {last!r})")
        time.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _secret(database: str, *args: str) -> str:
    out = subprocess.run([BIN, *args, "--database", database], check=True, capture_output=True, text=True).stdout
    for line in reversed(out.splitlines()):
        if line.strip().startswith(("fbu_", "fbk_")):
            return line.strip()
    raise RuntimeError(f"fusebox {' '.join(args)} printed no secret")


class FuseboxServer:
    def __init__(self, services: list[str]) -> None:
        if not os.path.exists(BIN):
            raise RuntimeError(f"no fusebox binary at {BIN}: build it (cargo build -p backend --bin fusebox) or set FUSEBOX_BIN")
        self.dir = tempfile.mkdtemp(prefix="fusebox-pybreaker-")
        self.database = f"sqlite://{self.dir}/fusebox.db"
        self.admin = _secret(self.database, "users", "add", "admin", "--admin")
        self.keys = {service: _secret(self.database, "keys", "create", "--service", service) for service in services}
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.resume()

    def resume(self) -> None:
        """Starts (again) on the same port and database."""
        self.process = subprocess.Popen(
            [BIN, "serve", "--bind", f"127.0.0.1:{self.port}", "--database", self.database],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "warn"},
        )
        listening = threading.Event()

        def read() -> None:
            for line in self.process.stdout:
                if "http://" in line:
                    listening.set()

        threading.Thread(target=read, daemon=True).start()
        if not listening.wait(30):
            self.stop()
            raise RuntimeError("fusebox serve printed no URL within 30 s")

    def stop(self) -> None:
        """SIGKILL: nothing is flushed that was not committed."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.admin}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read().decode()
            return error.code, json.loads(text) if text else None

    def get(self, path: str):
        status, body = self.request("GET", path)
        assert status == 200, f"GET {path} answered {status}: {body}"
        return body

    def write(self, method: str, path: str, body):
        status, answer = self.request(method, path, body)
        assert status < 300, f"{method} {path} answered {status}: {answer}"
        return answer

    def breaker(self, service: str, name: str):
        return next((b for b in self.get(f"/api/v1/breakers?service={service}") if b["breaker"] == name), None)

    def stream(self) -> "Stream":
        return Stream(self)


class Stream:
    """The live stream, read on a thread; ``next(want, deadline_s)`` gives the first match."""

    def __init__(self, server: FuseboxServer) -> None:
        request = urllib.request.Request(server.url + "/api/v1/stream")
        request.add_header("Authorization", f"Bearer {server.admin}")
        self.response = urllib.request.urlopen(request, timeout=60)
        self.events: list[dict] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event = {"event": "", "data": ""}
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event:"):
                    event["event"] = line[6:].strip()
                elif line.startswith("data:"):
                    event["data"] += line[5:].strip()
                elif line == "":
                    if event["event"]:
                        with self.lock:
                            self.events.append(event)
                    event = {"event": "", "data": ""}
        except Exception:
            pass

    def next(self, want, deadline_s: float) -> dict:
        def check():
            with self.lock:
                for index, event in enumerate(self.events):
                    if want(event):
                        return self.events.pop(index)
            return None

        return wait_for("a matching stream event", deadline_s, check)

    def close(self) -> None:
        self.response.close()


def pybreaker_config(**changes) -> dict:
    """A config as ``PUT …/config`` takes it, fitted to pybreaker (consecutive failures only)."""
    config = {
        "version": 0,
        "failure_rate_threshold": None,
        "consecutive_failures": 5,
        "window": {"kind": "count", "calls": 10},
        "minimum_calls": 5,
        "wait": {"kind": "fixed", "ms": 60000},
        "half_open_probes": 1,
        "half_open_successes": 1,
    }
    config.update(changes)
    return config


@pytest.fixture(scope="session")
def server():
    running = FuseboxServer(["py-shop"])
    yield running
    running.close()
