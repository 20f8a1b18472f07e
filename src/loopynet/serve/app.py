"""The FastAPI application of `loopynet serve`.

Routes: GET / (a page to try a classifier), GET /healthz (the process answers), GET /readyz (the models
are loaded, with their versions: a process listens only once they are), GET /v1/models, POST /v1/predict
and POST /v1/explain (classifiers), POST /v1/tag (taggers), OpenAPI docs at /docs. Errors are JSON objects
{"error": "<one line>"}: 413 body too large, 422 bad request (empty list, too many texts, non-string items,
unknown fields, unknown model, steps or threshold out of range, an explanation whose completeness check
fails), 503 queue full (with Retry-After). Each request writes one JSON line to the logger
"loopynet.serve.access" (stderr): method, path, status, latency_ms, texts, batch_size, model.

Threads: predictions and tags run in one inference thread, through each model's micro-batcher; explanations
(hundreds of forward and backward passes per text) run in a second thread of their own, one request at a
time through a bounded queue per classifier, so an explanation never holds up a forward pass of
/v1/predict: the two threads share the cores (each with `threads` torch threads), and the event loop runs
neither.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from loopynet.errors import UserError
from loopynet.serve.batcher import MicroBatcher, QueueFull
from loopynet.serve.registry import ServedModel, folder_kinds, load_served
from loopynet.serve.settings import ServeSettings

SETTINGS_ENV = "LOOPYNET_SERVE_SETTINGS"  # JSON ServeSettings for worker processes (--workers N)
access_log = logging.getLogger("loopynet.serve.access")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(description="reviews to classify")
    threshold: float | None = Field(None, ge=0, le=1, description="label = class_names[1] when probability >= "
                                    "threshold (default: the model's saved threshold)")
    model: StrictStr | None = Field(None, description="model name (default: the first classifier served)")


MAX_EXPLAIN_STEPS = 200  # Integrated Gradients' points per text: each is one forward and backward pass
EXPLAIN_METHOD = {
    "attribution": "Integrated Gradients (Sundararajan, Taly & Yan 2017) of the logit with respect to the word vector "
                   "at each position the model reads, from the all-zero-vector baseline, Gauss-Legendre points "
                   "(Captum), plus the n-gram part's exact share for models with one; sums to logit - baseline_logit "
                   "(delta: the completeness error)",
    "occlusion": "logit(text) - logit(text without the token)",
    "prefix_probability": "P(class_names[1]) of the first k tokens read, k = 1..L",
    "hidden": "the top recurrent layer's outputs per position read (bidirectional: forward units, then backward)",
}


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(description="reviews to explain (at most max_explain_texts, each cut at max_chars "
                                   "characters; the model reads its first maxlen tokens)")
    steps: int = Field(50, ge=1, le=MAX_EXPLAIN_STEPS, description="Integrated Gradients points per text")
    threshold: float | None = Field(None, ge=0, le=1, description="label = class_names[1] when probability >= "
                                    "threshold (default: the model's saved threshold)")
    model: StrictStr | None = Field(None, description="model name (default: the first classifier served)")


class TagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(description="texts to tag (tokenised like CoNLL)")
    model: StrictStr | None = Field(None, description="model name (default: the first tagger served)")


class RequestError(Exception):
    """A request the service refuses: status code and one-line message."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


def create_app(settings: ServeSettings, served: list[ServedModel] | None = None) -> FastAPI:
    """The service over `settings.models`. `served` are the models already loaded (`load_served`); without
    them each worker process loads its own copy at start-up, before it accepts a connection, so a request
    never reaches a worker that is not ready.

    Raises:
        ArtifactError: a missing or incomplete model folder. ValueError: settings out of range.
    """
    settings.check()
    kinds = folder_kinds(settings.models)
    _configure_access_log()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = app.state
        state.executor = ThreadPoolExecutor(1, thread_name_prefix="loopynet-inference")
        state.explain_executor = ThreadPoolExecutor(1, thread_name_prefix="loopynet-explain")
        loop = asyncio.get_running_loop()
        for executor in (state.executor, state.explain_executor):
            await loop.run_in_executor(executor, _set_threads, settings.threads)
        models = served if served is not None else await loop.run_in_executor(state.executor, load_served,
                                                                              settings.models)
        state.models = {m.name: m for m in models}
        state.batchers = {m.name: MicroBatcher(m.run_batch, state.executor, settings.max_batch_texts,
                                               settings.batch_wait_ms / 1000, settings.max_queue_texts,
                                               settings.batching) for m in models}
        state.explainers = {m.name: MicroBatcher(m.run_explain, state.explain_executor, settings.max_explain_texts,
                                                 0.0, settings.max_explain_queue, batching=False)
                            for m in models if m.kind == "classifier"}
        queues = [*state.batchers.values(), *state.explainers.values()]
        for queue in queues:
            queue.start()
        try:
            yield
        finally:
            for queue in queues:
                await queue.stop()
            state.executor.shutdown(wait=True)
            state.explain_executor.shutdown(wait=True)

    app = FastAPI(title="loopynet", version=_version(), lifespan=lifespan,
                  description="Recurrent neural networks over text: " + ", ".join(f"{n} ({k})" for n, k in kinds.items()))
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLog)
    _add_error_handlers(app)
    _add_routes(app, settings, kinds)
    return app


def app_from_env() -> FastAPI:
    """`create_app` with the settings in $LOOPYNET_SERVE_SETTINGS (uvicorn's factory in each worker process)."""
    return create_app(ServeSettings(**json.loads(os.environ[SETTINGS_ENV])))


def settings_env(settings: ServeSettings) -> str:
    return json.dumps(asdict(settings))


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _add_routes(app: FastAPI, settings: ServeSettings, kinds: dict[str, str]) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return files("loopynet.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/healthz", summary="the process answers")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="the models are loaded (a process accepts connections only after loading them)")
    async def readyz(request: Request) -> dict:
        return {"status": "ready", "models": {m.name: m.version for m in request.app.state.models.values()}}

    @app.get("/v1/models", summary="each model's name, version, kind, labels, config, history and data report")
    async def models(request: Request) -> dict:
        return {"models": [m.description for m in request.app.state.models.values()]}

    if "classifier" in kinds.values():
        @app.post("/v1/predict", summary="P(class_names[1]) and label per text, as `loopynet predict --json`")
        async def predict(body: PredictRequest, request: Request) -> dict:
            model, texts, truncated = _checked(request, settings, "classifier", body.model, body.texts)
            results = await _submit(request, request.app.state.batchers[model.name], texts)
            names = model.model.class_names
            threshold = model.model.threshold["value"] if body.threshold is None else body.threshold
            return {"model": model.name, "version": model.version,
                    "predictions": [{"text": t, "probability": p, "label": names[int(p >= threshold)],
                                     "truncated": cut} for t, p, cut in zip(texts, results, truncated)]}

        @app.post("/v1/explain", summary="per text: tokens (read, out of vocabulary, cut by maxlen), prediction and "
                                         "per-token evidence, as `Classifier.explain` (arrays as lists)")
        async def explain(body: ExplainRequest, request: Request) -> dict:
            model, texts, truncated = _checked(request, settings, "classifier", body.model, body.texts,
                                               "max_explain_texts")
            try:
                results = await _submit(request, request.app.state.explainers[model.name],
                                        [(t, body.steps, body.threshold) for t in texts])
            except UserError as err:  # Integrated Gradients' completeness check
                raise RequestError(422, str(err)) from None
            return {"model": model.name, "version": model.version, "method": EXPLAIN_METHOD,
                    "explanations": [e | {"truncated": cut} for e, cut in zip(results, truncated)]}

    if "tagger" in kinds.values():
        @app.post("/v1/tag", summary="tokens, IOB2 tags and entity spans per text, as `loopynet tag predict --json`")
        async def tag(body: TagRequest, request: Request) -> dict:
            model, texts, truncated = _checked(request, settings, "tagger", body.model, body.texts)
            results = await _submit(request, request.app.state.batchers[model.name], texts)
            return {"model": model.name, "version": model.version,
                    "results": [r | {"truncated": cut} for r, cut in zip(results, truncated)]}


def _checked(request: Request, settings: ServeSettings, kind: str, name: str | None, texts: list[str],
             limit: str = "max_texts") -> tuple[ServedModel, list[str], list[bool]]:
    """(model, texts cut at max_chars, truncated flags) of a request of at most settings.`limit` texts.
    Raises RequestError (422)."""
    state = request.scope.setdefault("state", {})
    state["texts"] = len(texts)  # logged for refused requests too
    if not texts:
        raise RequestError(422, "texts must hold at least 1 text")
    if len(texts) > getattr(settings, limit):
        raise RequestError(422, f"at most {getattr(settings, limit)} texts per request ({limit}), got {len(texts)}")
    model = _pick(request.app.state.models, kind, name)
    state["model"] = model.name
    return model, [t[: settings.max_chars] for t in texts], [len(t) > settings.max_chars for t in texts]


async def _submit(request: Request, queue: MicroBatcher, items: list) -> list:
    """The results of `items` through `queue` (a model's micro-batcher or explainer). Raises RequestError (503)."""
    try:
        results, batch_size = await queue.submit(items)
    except QueueFull as err:
        raise RequestError(503, str(err), retry_after=err.retry_after) from None
    request.scope["state"]["batch_size"] = batch_size
    return results


def _pick(models: dict[str, ServedModel], kind: str, name: str | None) -> ServedModel:
    candidates = [m for m in models.values() if m.kind == kind]
    if name is None:
        return candidates[0]
    for m in candidates:
        if m.name == name:
            return m
    raise RequestError(422, f"no {kind} named {name!r} is served; {kind}s: {[m.name for m in candidates]}")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError):
        headers = {"Retry-After": str(err.retry_after)} if err.retry_after else None
        return JSONResponse({"error": str(err)}, status_code=err.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        problems = ["/".join(str(p) for p in e["loc"] if p != "body") + f": {e['msg']}" for e in err.errors()]
        return JSONResponse({"error": "; ".join(problems)}, status_code=422)


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` (declared or streamed) is answered 413 before the
    application sees it; a body within the limit is read here (at most `max_bytes`) and handed on whole."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to answer
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await self._refuse(send)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: waits for http.disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send):
        body = json.dumps({"error": f"request body larger than {self.max_bytes:,} bytes (max_body_bytes)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class AccessLog:
    """ASGI middleware: one JSON line per HTTP request on the "loopynet.serve.access" logger."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), {"code": 500}
        state = scope.setdefault("state", {})

        async def recording(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            access_log.info(json.dumps({
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "method": scope["method"],
                "path": scope["path"], "status": status["code"],
                "latency_ms": round((time.perf_counter() - start) * 1000, 3),
                "texts": state.get("texts"), "batch_size": state.get("batch_size"), "model": state.get("model")}))


def _configure_access_log() -> None:
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False


def _version() -> str:
    from loopynet.version import __version__

    return __version__
