"""Running the application: a listening socket, uvicorn, and a clean exit on SIGTERM.

On SIGTERM (or SIGINT, Ctrl-C) uvicorn stops accepting connections, lets the requests in flight finish
(at most ``GRACEFUL_SECONDS``), then runs the lifespan shutdown, which answers whatever the
batcher still holds; the process then exits with status 0.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING

import uvicorn

from nerkit.errors import NerkitError
from nerkit.serve.app import ServeSettings, create_app

if TYPE_CHECKING:  # a model with prediction methods; torch-free for --runtime onnx
    from nerkit.predict import Tagger

GRACEFUL_SECONDS = 60  # longest wait for requests in flight after SIGTERM


def bind(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (``port`` 0: any free port), or a ``NerkitError``
    naming the address when it cannot be had (in use, not an address of this machine)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise NerkitError(f"--host {host!r}: {getattr(error, 'strerror', None) or error}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a stop
        sock.bind((host, port))
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
