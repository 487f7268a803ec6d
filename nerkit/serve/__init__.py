"""``nerkit serve``: a trained tagger over HTTP (Starlette on uvicorn), with micro-batching.

    from nerkit import Tagger
    from nerkit.serve import ServeSettings, create_app, serve
    serve(Tagger.from_pretrained("runs/default"), model_name="runs/default", port=8080)

Starlette rather than FastAPI: the server has two routes and validates its one body by hand
(to say exactly what is wrong, and to enforce the size limit while reading), so FastAPI's
models and generated docs would add a dependency and nothing used. An optional extra:
``pip install 'nerkit[serve]'``.
"""

from __future__ import annotations

from nerkit.extras import require

for _module in ("starlette", "uvicorn"):  # the serve extra, asked for before the app imports them
    require(_module, "serve", "nerkit serve")

from nerkit.serve.app import ServeSettings, create_app  # noqa: E402
from nerkit.serve.batcher import MicroBatcher  # noqa: E402
from nerkit.serve.server import WorkerSpec, bind, build_server, serve, serve_workers  # noqa: E402

__all__ = ["MicroBatcher", "ServeSettings", "WorkerSpec", "bind", "build_server", "create_app", "serve", "serve_workers"]
