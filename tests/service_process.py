"""A real ``arcface-paddle serve`` process on 127.0.0.1 for the service tests (start, wait ready, stop, kill -9)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

API_KEY = "test-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    def __init__(self, gallery: str, log_path: str, *extra: str, api_key: str | None = None):
        self.gallery = str(gallery)
        self.log_path = str(log_path)
        self.extra = [str(arg) for arg in extra]
        self.api_key = api_key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 240.0) -> "ServiceProcess":
        env = {key: value for key, value in os.environ.items() if key != "ARCFACE_API_KEY"}
        if self.api_key:
            env["ARCFACE_API_KEY"] = self.api_key
        command = [sys.executable, "-m", "arcface_paddle", "serve", "--gallery", self.gallery, "--port",
                   str(self.port), "--log_level", "warning", *self.extra]
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited with {self.process.returncode}: {self.log()}")
            try:
                if httpx.get(self.url + "/ready", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.kill()
        raise RuntimeError(f"service not ready after {timeout} s: {self.log()}")

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-4000:]

    def client(self, timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/api/v1", timeout=timeout)

    def key(self) -> dict:
        return {"X-API-Key": self.api_key} if self.api_key else {}

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def demo_service(folder, repo_root) -> ServiceProcess:
    """A started service over ``folder/gallery.db`` holding the demo gallery (demo/index.bin imported at
    start), changes behind :data:`API_KEY`; the service API and web page tests share it."""
    return ServiceProcess(folder / "gallery.db", folder / "server.log", "--import_index",
                          repo_root / "demo" / "index.bin", api_key=API_KEY).start()
