"""The HTTP application: ``GET /health`` and ``POST /predict`` over a ``MicroBatcher``, and the demo
page at ``GET /`` (``page.py``), which calls ``POST /predict`` as any client does.

    POST /predict  {"texts": ["Angela Merkel visited Paris.", ...]}
    -> 200 {"results": [{"text": "...", "entities": [{"start", "end", "type", "text", "score"}]}, ...]}

Results come in the order of the texts. A body that is not what this expects gets a 4xx with
``{"error": "..."}`` saying what was wrong: 400 (not JSON), 413 (over ``max_request_bytes``,
``max_texts`` or ``max_request_chars``; the body also names the limit and the request's size),
422 (JSON of the wrong shape, or a text the model refuses). A 500 only when the model call fails
on this request itself (see ``MicroBatcher``): the requests that shared the call still get theirs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from nerkit.errors import NerkitError
from nerkit.serve.batcher import MicroBatcher
from nerkit.serve.page import demo_page

if TYPE_CHECKING:  # a model with prediction methods; torch-free for --runtime onnx
    from nerkit.predict import Tagger

logger = logging.getLogger(__name__)

EXAMPLE_BODY = '{"texts": ["Angela Merkel visited Paris."]}'


@dataclass(frozen=True)
class ServeSettings:
    """Batching and request limits of the server (the ``nerkit serve`` options)."""

    max_batch_words: int = 2000  # words of one batched model call; 0: no batching, one call per request
    max_wait_ms: float = 5.0  # how long, at most, the first request of a batch waits for others to join
    max_request_bytes: int = 1_000_000  # a larger body gets 413
    max_texts: int = 1000  # texts per request; more get 413
    # Characters (code points) of all the texts of one request; more get 413. The model calls run one
    # at a time, so a request holds up every request queued behind it for as long as it is tagged:
    # this bounds that wait, at about 0.4 s of the default BiLSTM on one CPU thread (~250k characters/s),
    # proportionally more for a transformer. Characters, not words: Chinese or Japanese text has no
    # spaces between words, and a body's bytes overstate text sent as \u escapes. 100k characters is
    # about 16k English words, a tenth of what --max-request-bytes lets through.
    max_request_chars: int = 100_000
    split_sentences: bool = False  # tag each sentence of a text on its own (see nerkit.predict.documents)

    def __post_init__(self):
        for name, least in (("max_batch_words", 0), ("max_wait_ms", 0), ("max_request_bytes", 1), ("max_texts", 1),
                            ("max_request_chars", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= least:
                raise NerkitError(f"--{name.replace('_', '-')} {value!r}: expected a number >= {least}")


class _Refused(Exception):
    """A request answered with ``status`` and ``{"error": message, **fields}``."""

    def __init__(self, status: int, message: str, **fields: int):
        super().__init__(message)
        self.status = status
        self.fields = fields  # for a 413: the limit and the request's size, for clients to act on


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Refused(413, f"the body is {int(declared)} bytes, more than the limit of {limit} (--max-request-bytes)",
                       max_request_bytes=limit, request_bytes=int(declared))
    body, received, ended = bytearray(), 0, True
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received <= limit:
                body += chunk
            elif received > limit + DRAIN_BYTES:
                ended = False  # its size is not known: the rest is not read
                break
    except ClientDisconnect:
        raise _Refused(400, "the client went away before sending the whole body") from None
    if received > limit:
        sizes = {"request_bytes": received} if ended else {}
        raise _Refused(413, f"the body is {f'{received} bytes, ' if ended else ''}more than the limit of {limit} "
                            "bytes (--max-request-bytes)", max_request_bytes=limit, **sizes)
    return bytes(body)


# A streamed body over the limit is still read, and dropped, up to this much more before the 413:
# closing a connection with unread data resets it, and the client can lose the 413 itself.
DRAIN_BYTES = 1 << 20


def parse_texts(body: bytes, *, max_texts: int, max_chars: int) -> list[str]:
    """The texts of a ``/predict`` body, or ``_Refused`` saying what is wrong with it."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as error:  # also bytes that are not UTF-8, UTF-16 or UTF-32
        why = getattr(error, "msg", None) or type(error).__name__
        raise _Refused(400, f"the body is not valid JSON ({why}); expected {EXAMPLE_BODY}") from None
    if not isinstance(payload, dict):
        raise _Refused(422, f"the body is a JSON {_json_type(payload)}; expected an object, {EXAMPLE_BODY}")
    unknown = sorted(set(payload) - {"texts"})
    if unknown:
        raise _Refused(422, f"unknown field {', '.join(map(repr, unknown))}; expected only \"texts\", {EXAMPLE_BODY}")
    if "texts" not in payload:
        raise _Refused(422, f"no \"texts\" field; expected {EXAMPLE_BODY}")
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise _Refused(422, f"\"texts\" is a JSON {_json_type(texts)}; expected an array of strings")
    if len(texts) > max_texts:
        raise _Refused(413, f"{len(texts)} texts, more than the limit of {max_texts} per request (--max-texts)",
                       max_texts=max_texts, request_texts=len(texts))
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise _Refused(422, f"texts[{index}] is a JSON {_json_type(text)}; expected a string")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800": not text
            raise _Refused(422, f"texts[{index}] holds a lone surrogate (an unpaired \\ud800-\\udfff escape); "
                           "expected valid Unicode text") from None
    chars = sum(map(len, texts))
    if chars > max_chars:
        raise _Refused(413, f"the texts hold {chars} characters, more than the limit of {max_chars} per request "
                       "(--max-request-chars); send them in several requests", max_request_chars=max_chars,
                       request_chars=chars)
    return texts


def create_app(tagger: Tagger, *, model_name: str | None = None, settings: ServeSettings | None = None,
               worker: int = 1, workers: int = 1) -> Starlette:
    """The ASGI application serving ``tagger`` (loaded by the caller on the device and runtime
    it chose), as worker number ``worker`` of ``workers`` (``nerkit serve --workers``: /health
    says which one answered). ``app.state.batcher`` holds the batcher and its counters."""
    settings = settings or ServeSettings()
    batcher = MicroBatcher(lambda texts: tagger.predict(texts, split_sentences=settings.split_sentences),
                           max_batch_words=settings.max_batch_words, max_wait_ms=settings.max_wait_ms)
    if settings.split_sentences:
        tagger.pipe([], split_sentences=True)  # a missing splitter is reported now, not at the first request

    page = demo_page(tagger.entity_types, model_name=model_name, max_chars=settings.max_request_chars)

    async def demo(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def health(request: Request) -> JSONResponse:
        # requests and model_calls count this worker's alone
        return JSONResponse({"status": "ok", "model": model_name, "entity_types": list(tagger.entity_types),
                             "worker": worker, "workers": workers, "pid": os.getpid(),
                             "requests": batcher.requests, "model_calls": batcher.model_calls})

    async def predict(request: Request) -> JSONResponse:
        try:
            texts = parse_texts(await _read_body(request, settings.max_request_bytes), max_texts=settings.max_texts,
                                max_chars=settings.max_request_chars)
            results = await batcher.predict(texts) if texts else []
        except _Refused as refusal:
            return JSONResponse({"error": str(refusal), **refusal.fields}, status_code=refusal.status)
        except NerkitError as error:  # a text the model cannot take (an encoder set to refuse long inputs)
            return JSONResponse({"error": str(error)}, status_code=422)
        except Exception as error:  # the model failed on this request alone; the batcher logged the traceback
            return JSONResponse({"error": f"internal error ({type(error).__name__}) while tagging this request; "
                                 "the server's log has the details"}, status_code=500)
        return JSONResponse({"results": results})

    async def http_error(request: Request, error: HTTPException) -> JSONResponse:  # 404, 405: JSON too
        return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)

    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        logger.error("internal error on %s %s: %r", request.method, request.url.path, error)
        return JSONResponse({"error": f"internal error ({type(error).__name__}): a bug in nerkit"}, status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = Starlette(routes=[Route("/", demo, methods=["GET"]), Route("/health", health, methods=["GET"]), Route("/predict", predict, methods=["POST"])],
                    exception_handlers={HTTPException: http_error, Exception: internal_error}, lifespan=lifespan)
    app.state.batcher = batcher
    return app
