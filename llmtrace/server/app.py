"""Run ``llmtrace server``: one process, one embedded ClickHouse, two HTTP listeners.

Start order makes failures cheap and clear: bind both ports (a taken port names its flag),
lock and open the data dir (a second server on it is refused), apply migrations, then serve.
Both uvicorn servers share one event loop. SIGINT/SIGTERM stop the listeners, let in-flight
requests finish (OTLP requests wait for their batch to be written), then close the engine.
Both ports bound their connections (count, header and body time, see :mod:`.connections`);
the open-files limit is raised to its hard limit at start and the connection cap kept well
below it, so slow clients cannot starve the engine of file descriptors.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import resource
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from llmtrace.server import faults
from llmtrace.server.batcher import SpanWriter
from llmtrace.server.browser_guard import BrowserGuard, is_loopback
from llmtrace.server.clickhouse_http import ClickHouseHttp
from llmtrace.server.connections import ConnectionLimits, guarded_protocol, quiet_disconnects
from llmtrace.server.decode import retention_edge
from llmtrace.server.engine import Engine
from llmtrace.server.otlp import otlp_app
from llmtrace.server.sink import SpanSink
from llmtrace.server.wal import WriteAheadLog
from llmtrace.server.workers import DecodePool
from llmtrace.store.prices import Repricer

__all__ = ["ServerConfig", "StartupError", "serve"]

logger = logging.getLogger("llmtrace.server")


class StartupError(RuntimeError):
    """The server cannot start; the message says why and what to change."""


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    otlp_port: int = 4318
    http_port: int = 8123
    password: str | None = None
    ttl_days: int | None = None  # None: 30 days for new tables, existing ones untouched
    decode_workers: int | None = None
    max_connections: int | None = None  # per port; None: from the open-files limit (at most 4096)
    header_seconds: float = 10.0
    body_seconds: float = 30.0
    prices_file: Path | None = None  # price overrides to keep and apply to stored calls
    reprice_seconds: float = 300.0  # re-price new calls (unpriced, overridden) this often (0: never)


def bind(host: str, port: int, flag: str) -> socket.socket:
    """A listening socket, or a StartupError naming the port and the flag that changes it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else
    # every keep-alive response stalls 40 ms on Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use (another llmtrace server or ClickHouse?). "
                f"Stop that process or choose another port with {flag} PORT."
            ) from None
        raise StartupError(f"cannot listen on {host}:{port} ({flag}): {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _migrate(engine: Engine, ttl_days: int | None) -> list[str]:
    """Apply pending schema files; a retention given explicitly also applies to existing tables."""
    from llmtrace.store.migrations import apply_migrations, set_ttl

    try:
        applied = apply_migrations(engine.run, ttl_days=ttl_days or 30)
        if ttl_days is not None:
            set_ttl(engine.run, ttl_days=ttl_days)
        return applied
    except Exception as exc:
        raise StartupError(f"applying the schema to {engine.data_dir} failed: {exc}") from exc


def _prices(engine: Engine, prices_file: Path | None) -> str:
    """Keep ``--prices-file``'s overrides and re-price stored calls with every stored override."""
    from llmtrace.store.prices import serve_prices

    try:
        return serve_prices(engine.data_dir, prices_file)
    except Exception as exc:
        raise StartupError(f"applying price overrides failed: {exc}") from exc


def _overridden(engine: Engine) -> tuple[tuple[str, str], ...]:
    """The models with a stored price override (the decode workers leave their calls to re-pricing)."""
    from llmtrace.store.prices import overridden_models

    try:
        return overridden_models(engine.data_dir)
    except Exception as exc:
        raise StartupError(f"reading the stored price overrides failed: {exc}") from exc


def _raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _limits(config: ServerConfig) -> ConnectionLimits:
    """Connection caps: half the files left after 1024 kept for the engine, split over two ports."""
    files = _raise_open_files_limit()
    cap = config.max_connections or max(64, min(4096, (files - 1024) // 4))
    return ConnectionLimits(cap, config.header_seconds, config.body_seconds)


_MAX_TTL_DAYS = 25_000


def _retention_days(engine: Engine) -> int | None:
    """The TTL of otel_traces in days as the table has it now (None: no TTL).

    A TTL reaching past 2106 wraps ClickHouse's DateTime and deletes every row at INSERT time
    (measured: ``--ttl-days 30000`` stored nothing), so it is refused."""
    rows = engine.run(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'otel_traces'"
    )
    match = re.search(r"TTL .*?toIntervalDay\((\d+)\)", str(rows[0][0])) if rows else None
    days = int(match.group(1)) if match else None
    if days is not None and days > _MAX_TTL_DAYS:
        raise StartupError(
            f"otel_traces keeps spans {days} days, past 2106 where ClickHouse's DateTime ends (every row would be"
            f" deleted at once); restart with --ttl-days {_MAX_TTL_DAYS} or less"
        )
    return days


def _uvicorn(app: Callable[..., object], limits: ConnectionLimits, port: str) -> uvicorn.Server:
    config = uvicorn.Config(
        quiet_disconnects(app, port),  # type: ignore[arg-type]
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
        server_header=False,
        http=guarded_protocol(limits, port),
        timeout_keep_alive=5,
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what Server.serve() would set up
    return server


async def _run_servers(servers: list[tuple[uvicorn.Server, socket.socket]], ready: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:  # a second signal skips waiting for open connections
        for server, _ in servers:
            server.force_exit = server.should_exit
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    for server, sock in servers:
        await server.startup(sockets=[sock])
    ready()
    await asyncio.gather(*(server.main_loop() for server, _ in servers))
    await asyncio.gather(*(server.shutdown(sockets=[sock]) for server, sock in servers))


def serve(config: ServerConfig, announce: Callable[[str], None] = print) -> None:
    """Run until SIGINT/SIGTERM. Raises :class:`StartupError` if it cannot start."""
    if config.password is None and not is_loopback(config.host):
        raise StartupError(
            f"listening on {config.host} (beyond this machine) needs a password: set LLMTRACE_PASSWORD, "
            "or keep the default --host 127.0.0.1"
        )
    if config.otlp_port == config.http_port and config.otlp_port != 0:
        raise StartupError(f"--otlp-port and --http-port are both {config.otlp_port}; give them different ports.")
    otlp_sock = bind(config.host, config.otlp_port, "--otlp-port")
    try:
        http_sock = bind(config.host, config.http_port, "--http-port")
    except StartupError:
        otlp_sock.close()
        raise
    try:
        engine = Engine(config.data_dir)
    except Exception as exc:
        otlp_sock.close()
        http_sock.close()
        raise StartupError(str(exc)) from exc
    try:
        _serve_engine(config, engine, otlp_sock, http_sock, announce)
    finally:
        engine.close()


def _serve_engine(
    config: ServerConfig,
    engine: Engine,
    otlp_sock: socket.socket,
    http_sock: socket.socket,
    announce: Callable[[str], None],
) -> None:
    if config.ttl_days is not None and not 0 < config.ttl_days <= _MAX_TTL_DAYS:
        raise StartupError(f"--ttl-days must be between 1 and {_MAX_TTL_DAYS} (ClickHouse's DateTime ends in 2106)")
    applied = _migrate(engine, config.ttl_days)
    priced = _prices(engine, config.prices_file)
    repricer = Repricer(engine.data_dir, config.reprice_seconds)
    ttl_days = _retention_days(engine)
    sink = SpanSink(engine)
    writer = SpanWriter(sink, WriteAheadLog(engine.data_dir / "llmtrace-wal"))
    try:
        replayed = writer.replay()
    except Exception as exc:
        sink.close()
        raise StartupError(f"re-inserting spans logged before the last stop failed: {exc}") from exc
    decoders = DecodePool(config.decode_workers, _overridden(engine))
    writer.start()
    faults.start_from_env(engine)
    otlp = otlp_app(writer, decoders, config.password, lambda: retention_edge(ttl_days))
    query = ClickHouseHttp(engine, config.password, visible=writer.wait_visible)
    servers = [  # browsers are kept out of both ports (see browser_guard)
        (_uvicorn(BrowserGuard(otlp, config.host), _limits(config), "OTLP"), otlp_sock),
        (_uvicorn(BrowserGuard(query, config.host), _limits(config), "query"), http_sock),
    ]

    def ready() -> None:
        schema = f"applied {len(applied)} schema file(s)" if applied else "schema up to date"
        auth = "LLMTRACE_PASSWORD required" if config.password else "none (set LLMTRACE_PASSWORD to require one)"
        if replayed:
            schema += f", re-inserted {replayed} spans logged before the last stop"
        schema += priced
        announce(
            f"llmtrace server ready (ClickHouse {engine.version}, {schema}, data in {engine.data_dir})\n"
            f"  OTLP/HTTP traces : {_url(config.host, otlp_sock)}/v1/traces\n"
            f"  ClickHouse HTTP  : {_url(config.host, http_sock)}\n"
            f"  auth             : {auth}"
        )
        sys.stdout.flush()

    repricer.start()
    try:
        asyncio.run(_run_servers(servers, ready))
    finally:
        repricer.stop()
        decoders.close()
        writer.close()
        sink.close()
    logger.info("stopped: %s", writer.stats.snapshot(writer.backlog()))
