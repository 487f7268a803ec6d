"""Running the application: a listening socket, uvicorn, and a clean exit on SIGTERM; with
``serve_workers``, several worker processes on one port under a supervising parent.

On SIGTERM (or SIGINT, Ctrl-C) uvicorn stops accepting connections, lets the requests in flight finish
(at most ``GRACEFUL_SECONDS``), then runs the lifespan shutdown, which answers whatever the
batcher still holds; the process then exits with status 0.

Workers (``nerkit serve --workers N``, Linux): each worker is a process of its own that loads the
model, runs its own micro-batcher and listens on the same port with ``SO_REUSEPORT``, so the
kernel spreads new connections over the workers. One socket accepted from by every worker would
not: an event loop woken for it accepts every connection waiting, and a burst of clients
connecting at once (a client pool, the benchmark) would all land on the worker that woke first.
The parent holds the port (bound, not listening, so no connection waits on it), prints the
address once every worker listens, and supervises: SIGTERM or Ctrl-C stops each worker as above
and exits 0; a worker that dies stops the others and the parent exits with an error naming it
(no restart: a worker killed for its memory or crashed by the model would likely die again, and
a service manager that restarts the whole server sees the failure).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from nerkit.errors import NerkitError
from nerkit.serve.app import ServeSettings, create_app

if TYPE_CHECKING:  # a model with prediction methods; torch-free for --runtime onnx
    from nerkit.predict import Tagger

GRACEFUL_SECONDS = 60  # longest wait for requests in flight after SIGTERM


def bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A socket listening on ``host:port`` (``port`` 0: any free port), or a ``NerkitError``
    naming the address when it cannot be had (in use, not an address of this machine).
    ``reuse_port``: other sockets of this user with ``SO_REUSEPORT`` may bind the port too (the
    workers); ``listen=False``: bound only, holding the port."""
    try:
        family, kind, protocol = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][:3]
        # With its protocol named (IPPROTO_TCP, not 0), asyncio turns Nagle's algorithm off on each
        # connection it accepts (TCP_NODELAY): else the body of an answer, written after its headers,
        # waited for the client's delayed ACK of them, 40 ms, on every request of a keep-alive connection.
        sock = socket.socket(family, kind, protocol)
    except (OSError, UnicodeError) as error:
        raise NerkitError(f"--host {host!r}: {getattr(error, 'strerror', None) or error}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a stop
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(2048)  # clients may connect (and wait) from now on, before uvicorn starts
    except OSError as error:
        sock.close()
        raise NerkitError(f"cannot listen on {host}:{port} ({error.strerror or error}); pick another --port "
                          "or --host") from None
    return sock


def build_server(app, *, log_level: str = "info") -> uvicorn.Server:
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=GRACEFUL_SECONDS)
    return uvicorn.Server(config)


def serve(tagger: Tagger, *, model_name: str | None = None, host: str = "127.0.0.1", port: int = 8080,
          settings: ServeSettings | None = None) -> None:
    """Serve ``tagger`` over HTTP until SIGTERM or Ctrl-C; returns after a clean shutdown."""
    app = create_app(tagger, model_name=model_name, settings=settings)
    sock = bind(host, port)
    server = build_server(app)
    shown = f"[{host}]" if ":" in host else host
    print(f"nerkit serve: {model_name or 'model'} on http://{shown}:{sock.getsockname()[1]} "
          "(GET / for the demo page, GET /health, POST /predict)", file=sys.stderr, flush=True)
    if threading.current_thread() is not threading.main_thread():
        server.run(sockets=[sock])
        return
    # uvicorn answers SIGTERM and SIGINT with a graceful shutdown and then raises the signal again
    # with the handler it found, to die of it: this handler makes that a clean exit (status 0), and
    # a signal arriving before uvicorn listens still shuts the server down.
    previous = {number: signal.signal(number, lambda signum, frame: setattr(server, "should_exit", True))
                for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        sock.close()


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs to load and serve the model as ``nerkit serve`` does: the
    arguments of ``Tagger.from_pretrained``, the ``--code`` files to import first (a spawned
    process starts bare), and its torch threads."""

    model: Path
    load_options: dict = field(default_factory=dict)  # device, precision, runtime, ... of from_pretrained
    code: tuple[Path, ...] = ()
    threads: int | None = None  # None: OMP_NUM_THREADS if set, else half the cores shared among the workers


def serve_workers(spec: WorkerSpec, *, workers: int, model_name: str | None = None, host: str = "127.0.0.1",
                  port: int = 8080, settings: ServeSettings | None = None) -> None:
    """Serve with ``workers`` processes on one port until SIGTERM or Ctrl-C (see the module's
    docstring); returns after a clean shutdown, raises a ``NerkitError`` when a worker fails to
    start (its own message) or dies."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise NerkitError(f"--workers {workers!r}: expected a whole number of worker processes >= 1 (1: one "
                          "process, as without the option)")
    if not sys.platform.startswith("linux"):  # SO_REUSEPORT elsewhere does not spread connections
        raise NerkitError(f"--workers {workers}: several workers on one port need Linux (SO_REUSEPORT spreads "
                          f"connections over them), and this is {sys.platform}; run one worker per port behind a "
                          "proxy, or use --workers 1")
    # A plain bind first: it fails if anything holds the port, even another server's SO_REUSEPORT
    # group, whose requests would otherwise be mixed with ours.
    probe = bind(host, port, listen=False)
    port = probe.getsockname()[1]
    probe.close()
    holder = bind(host, port, reuse_port=True, listen=False)
    context = multiprocessing.get_context("spawn")  # a fork would copy the parent's torch and its threads
    supervisor = _Supervisor()
    processes: list[multiprocessing.Process] = []
    try:
        supervisor.catch_signals()
        ready: dict[multiprocessing.connection.Connection, int] = {}
        threads: set[int] = set()
        for number in range(1, workers + 1):
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(target=_run_worker, name=f"nerkit-serve-worker-{number}", daemon=False,
                                      args=(spec, number, workers, model_name, host, port, settings, writer))
            process.start()
            writer.close()  # the worker's end: the reader sees EOF when the worker dies
            processes.append(process)
            ready[reader] = number
        while ready and not supervisor.stopping:
            for reader in multiprocessing.connection.wait(list(ready), timeout=0.2):
                number = ready.pop(reader)
                try:
                    message = reader.recv()
                except EOFError:  # it died before saying it listens
                    processes[number - 1].join(5)
                    raise NerkitError(f"{_worker_name(processes, number)} {_how_it_ended(processes[number - 1])} "
                                      "while loading the model (its output is above); the other workers were "
                                      "stopped") from None
                if message[0] == "error":  # a NerkitError of the worker: the user's to fix
                    raise NerkitError(message[1])
                threads.add(message[1])
        if supervisor.stopping:
            return
        shown = f"[{host}]" if ":" in host else host
        print(f"nerkit serve: {model_name or 'model'} on http://{shown}:{port} with {workers} workers "
              f"(pids {', '.join(str(process.pid) for process in processes)}; torch threads per worker: "
              f"{'/'.join(map(str, sorted(threads)))}; GET / for the demo page, GET /health, POST /predict)",
              file=sys.stderr, flush=True)
        sentinels = {process.sentinel: number for number, process in enumerate(processes, 1)}
        while not supervisor.stopping:
            for sentinel in multiprocessing.connection.wait(list(sentinels), timeout=0.2):
                number = sentinels[sentinel]
                processes[number - 1].join()
                raise NerkitError(f"{_worker_name(processes, number)} {_how_it_ended(processes[number - 1])}; the "
                                  "server stopped the other workers and exits (requests that worker held got no "
                                  "answer). Its output above may say why; restart nerkit serve, under a service "
                                  "manager to have that done for you")
    finally:
        failed = _stop(processes)
        supervisor.restore_signals()
        holder.close()
    if failed:  # a clean stop was asked for, and a worker did not end cleanly
        raise NerkitError(f"{_worker_name(processes, failed)} {_how_it_ended(processes[failed - 1])} while stopping")


class _Supervisor:
    """SIGTERM and SIGINT in the parent: a flag its wait loops look at (every 0.2 s)."""

    def __init__(self):
        self.stopping = False
        self._previous: dict = {}

    def catch_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, lambda signum, frame: setattr(self, "stopping", True))
                              for number in (signal.SIGTERM, signal.SIGINT)}

    def restore_signals(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def _stop(processes: list[multiprocessing.Process]) -> int:
    """SIGTERM to each worker still running, then wait for them to finish their requests in
    flight; the number of the first that did not exit with status 0, else 0."""
    for process in processes:
        if process.exitcode is None:
            process.terminate()
    failed = 0
    for number, process in enumerate(processes, 1):
        process.join(GRACEFUL_SECONDS + 30)  # uvicorn's graceful wait, then the batcher's queue
        if process.exitcode is None:
            process.kill()
            process.join()
        if process.exitcode != 0 and not failed:
            failed = number
    return failed


def _worker_name(processes: list[multiprocessing.Process], number: int) -> str:
    return f"worker {number} of {len(processes)} (pid {processes[number - 1].pid})"


def _how_it_ended(process: multiprocessing.Process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _run_worker(spec: WorkerSpec, number: int, workers: int, model_name: str | None, host: str, port: int,
                settings: ServeSettings | None, ready: multiprocessing.connection.Connection) -> None:
    """One worker process: load the model as ``nerkit serve`` does, listen on the shared port, say
    so to the parent, serve until SIGTERM (from the parent) or until the parent is gone."""
    # Ctrl-C reaches every process of the terminal's group: the parent alone decides, and stops
    # the workers with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    try:
        if spec.code:
            from nerkit.plugins import load_code

            load_code(list(spec.code))
        from nerkit.predict.loading import load_tagger, set_threads
        from nerkit.threads import default_cpu_threads

        threads = spec.threads
        if threads is None and not os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
            # the workers share the cores that one server would take (half of them), so that N
            # workers do not run N times the threads the machine has
            threads = max(1, default_cpu_threads() // workers)
        threads = set_threads(threads, spec.load_options.get("runtime", "torch"))  # torch-free for --runtime onnx
        tagger = load_tagger(spec.model, **spec.load_options)
        app = create_app(tagger, model_name=model_name, settings=settings, worker=number, workers=workers)
        sock = bind(host, port, reuse_port=True)
    except (NerkitError, OSError) as error:  # what the command line reports in one paragraph (exit 2)
        message = str(error)
        if isinstance(error, OSError) and error.filename is not None:
            message = f"{error.filename}: {error.strerror or error}"
        ready.send(("error", message))
        sys.exit(2)
    server = build_server(app)
    signal.signal(signal.SIGTERM, lambda signum, frame: setattr(server, "should_exit", True))

    def watch_parent() -> None:  # a parent killed outright (SIGKILL) would leave the workers serving
        while os.getppid() == parent and not server.should_exit:
            time.sleep(1.0)
        server.should_exit = True

    threading.Thread(target=watch_parent, name="nerkit-parent-watch", daemon=True).start()
    ready.send(("listening", threads))
    ready.close()
    try:
        server.run(sockets=[sock])
    finally:
        # Served and stopped: a late SIGTERM (a service manager signals the whole group, as the parent
        # does) must not kill the process while it exits, where Python has put back the default handler.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sock.close()
