"""`loopynet serve MODEL [MODEL ...]`: argument handling, the listening socket, uvicorn.

Every model folder is loaded before the port is opened, so a damaged folder stops the command with
one line (exit 2) and nothing listens; a port in use is one line too. uvicorn's SIGTERM/Ctrl-C handling
stops accepting connections, lets in-flight requests finish (up to --graceful-timeout seconds), then exits.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from loopynet.errors import UserError


# seconds an idle keep-alive connection stays open (uvicorn's default, 5 s, closed connections under load
# just as clients reused them: ReadErrors in benchmarks/bench_serve.py); longer than usual proxies' 60 s
KEEP_ALIVE = 75


class ServeError(UserError, ValueError):
    """The service cannot start (port in use, bad settings)."""


def add_parser(sub) -> None:
    """Add the `serve` subcommand to the `loopynet` subparsers `sub`."""
    from loopynet.serve.settings import ServeSettings

    d = ServeSettings()
    sv = sub.add_parser("serve", help="serve model folders over HTTP (FastAPI + uvicorn): a page at /, /v1/predict, "
                                      "/v1/explain, /v1/tag, /v1/models, /healthz, /readyz, /docs", allow_abbrev=False)
    sv.add_argument("models", nargs="+", help="model folders (classifiers and/or taggers), named by folder name")
    sv.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, this machine only)")
    sv.add_argument("--port", type=int, default=8000, help="TCP port, 0 = any free port (default: 8000)")
    sv.add_argument("--workers", type=int, default=1,
                    help="worker processes (uvicorn), each with its own copy of the models and its inference "
                         "thread; use about one per core (default: 1)")
    sv.add_argument("--threads", type=int, default=d.threads, help="torch threads per worker, set once (default: 1)")
    sv.add_argument("--max-batch-texts", type=int, default=d.max_batch_texts,
                    help=f"texts per forward pass (default: {d.max_batch_texts})")
    sv.add_argument("--batch-wait-ms", type=float, default=d.batch_wait_ms,
                    help=f"how long a batch waits for more requests (default: {d.batch_wait_ms:g} ms)")
    sv.add_argument("--no-batching", dest="batching", action="store_false",
                    help="one forward pass per request, for comparison (default: micro-batching on)")
    sv.add_argument("--max-queue-texts", type=int, default=d.max_queue_texts,
                    help=f"texts waiting per model before requests get 503 + Retry-After (default: {d.max_queue_texts:,})")
    sv.add_argument("--max-texts", type=int, default=d.max_texts, help=f"texts per request, more: 422 (default: {d.max_texts})")
    sv.add_argument("--max-chars", type=int, default=d.max_chars,
                    help=f"characters per text; longer texts are truncated and flagged (default: {d.max_chars:,})")
    sv.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes,
                    help=f"request body size in bytes, more: 413 (default: {d.max_body_bytes:,})")
    sv.add_argument("--max-explain-texts", type=int, default=d.max_explain_texts,
                    help=f"texts per /v1/explain request, more: 422 (default: {d.max_explain_texts})")
    sv.add_argument("--max-explain-queue", type=int, default=d.max_explain_queue,
                    help="texts waiting or being explained per classifier (one explain thread per worker, beside "
                         f"the inference thread) before requests get 503 + Retry-After (default: {d.max_explain_queue})")
    sv.add_argument("--graceful-timeout", type=float, default=30.0,
                    help="seconds in-flight requests get to finish after SIGTERM (default: 30)")


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as err:
        raise ServeError(f"{err.name} is missing; install the extra: pip install 'loopynet[serve]'") from None
    from loopynet.serve.settings import ServeSettings

    settings = ServeSettings(models=list(args.models), max_body_bytes=args.max_body_bytes, max_texts=args.max_texts,
                             max_chars=args.max_chars, max_batch_texts=args.max_batch_texts,
                             batch_wait_ms=args.batch_wait_ms, max_queue_texts=args.max_queue_texts,
                             batching=args.batching, threads=args.threads,
                             max_explain_texts=args.max_explain_texts, max_explain_queue=args.max_explain_queue)
    settings.check()
    if not 1 <= args.workers <= 64:
        raise ServeError(f"--workers must be 1 to 64, got {args.workers}")
    from loopynet.serve.registry import load_served

    served = load_served(settings.models)  # ArtifactError: one line, exit 2, nothing listens
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    names = ", ".join(f"{m.name} ({m.kind}, version {m.version})" for m in served)
    print(f"loopynet serve: {names} on http://{host}:{port} (docs: /docs; {args.workers} worker(s))",
          file=sys.stderr, flush=True)
    if args.workers == 1:
        return _run_one(settings, served, sock, args.graceful_timeout)
    del served  # each worker process loads its own copy
    sock.close()  # the port was free a moment ago; uvicorn's supervisor binds it for its workers
    return _run_workers(settings, host, port, args.workers, args.graceful_timeout)


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (SO_REUSEADDR, as uvicorn binds).

    Raises:
        ServeError: the address is in use or cannot be bound, in one line.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        hint = " (another server is listening there? stop it or pass another --port)" if err.errno == 98 else ""
        raise ServeError(f"cannot listen on {host}:{port}: {err.strerror}{hint}") from None
    sock.set_inheritable(True)
    return sock


def _run_one(settings, served, sock: socket.socket, graceful_timeout: float) -> int:
    import uvicorn

    from loopynet.serve.app import create_app

    config = uvicorn.Config(create_app(settings, served), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=graceful_timeout, timeout_keep_alive=KEEP_ALIVE)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else 1


def _run_workers(settings, host: str, port: int, workers: int, graceful_timeout: float) -> int:
    import uvicorn

    from loopynet.serve.app import SETTINGS_ENV, settings_env

    os.environ[SETTINGS_ENV] = settings_env(settings)
    uvicorn.run("loopynet.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False, timeout_graceful_shutdown=graceful_timeout,
                timeout_keep_alive=KEEP_ALIVE)
    return 0
