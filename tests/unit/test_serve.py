"""The HTTP service in-process (FastAPI's TestClient runs its lifespan): answers equal the library's,
limits give JSON errors, readiness, the access log, and the micro-batcher's rules."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.serve.app import access_log, create_app
from loopynet.serve.batcher import MicroBatcher, QueueFull
from loopynet.serve.registry import load_served
from loopynet.serve.settings import ServeSettings

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folders(tiny_imdb, tiny_vectors, tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), ModelConfig(units=4, head="max", maxlen=12),
                     TrainConfig(epochs=2, batch_size=16), progress=False, log=lambda s: None).save(root / "reviews")
    return {"classifier": root / "reviews"}


@pytest.fixture(scope="module")
def client(folders):
    settings = ServeSettings(models=[str(folders["classifier"])], max_texts=4, max_chars=50, max_body_bytes=2000)
    with TestClient(create_app(settings, load_served(settings.models))) as c:
        yield c


def test_predict_answers_what_the_library_answers(client, folders):
    texts = ["great wonderful superb film .", "awful boring dreadful plot ."]
    response = client.post("/v1/predict", json={"texts": texts, "threshold": 0.4})
    assert response.status_code == 200
    body = response.json()
    expected = Classifier.load(folders["classifier"]).predict(texts, threshold=0.4)
    assert body["model"] == "reviews" and len(body["version"]) == 12
    assert [{k: p[k] for k in ("text", "label")} for p in body["predictions"]] == [{k: e[k] for k in ("text", "label")} for e in expected]
    assert np.allclose([p["probability"] for p in body["predictions"]], [e["probability"] for e in expected], atol=1e-6)
    assert [p["truncated"] for p in body["predictions"]] == [False, False]


def test_limits_give_json_errors(client):
    def error(response, status):
        assert response.status_code == status, response.text
        return response.json()["error"]

    assert "at least 1 text" in error(client.post("/v1/predict", json={"texts": []}), 422)
    assert "at most 4 texts per request" in error(client.post("/v1/predict", json={"texts": ["a"] * 5}), 422)
    assert "texts/1: Input should be a valid string" in error(client.post("/v1/predict", json={"texts": ["a", 3]}), 422)
    assert "colour: Extra inputs are not permitted" in error(client.post("/v1/predict", json={"texts": ["a"], "colour": 1}), 422)
    assert "threshold" in error(client.post("/v1/predict", json={"texts": ["a"], "threshold": 2}), 422)
    assert "no classifier named 'x'" in error(client.post("/v1/predict", json={"texts": ["a"], "model": "x"}), 422)
    assert "larger than 2,000 bytes" in error(client.post("/v1/predict", json={"texts": ["a" * 3000]}), 413)
    streamed = client.post("/v1/predict", content=iter([b'{"texts": ["' + b"a" * 1500, b"a" * 1500 + b'"]}']),
                           headers={"content-type": "application/json"})  # chunked: no content-length
    assert "larger than" in error(streamed, 413)
    assert client.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


def test_overlong_texts_are_truncated_and_flagged(client):
    long_text = "great " * 20  # 120 characters, limit 50
    body = client.post("/v1/predict", json={"texts": [long_text, "great"]}).json()
    first = body["predictions"][0]
    assert first["truncated"] is True and first["text"] == long_text[:50]
    assert body["predictions"][1]["truncated"] is False


def test_health_models_docs_and_the_page(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    readyz = client.get("/readyz").json()
    assert readyz["status"] == "ready" and list(readyz["models"]) == ["reviews"]
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["reviews"]["kind"] == "classifier" and models["reviews"]["labels"] == ["neg", "pos"]
    assert models["reviews"]["config"]["model"]["head"] == "max" and len(models["reviews"]["history"]) == 2
    assert models["reviews"]["data_report"]["train"]["documents"] == 96
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/predict", "/v1/explain", "/v1/models", "/healthz", "/readyz"} <= set(paths)
    assert "/v1/tag" not in paths  # no tagger
    page = client.get("/").text
    assert 'id="text"' in page and 'id="probability"' in page
    assert "http://" not in page and "https://" not in page and 'src="//' not in page  # no external resources


def test_explain_answers_what_the_library_answers(client, folders):
    text = "great wonderful film . the plot was boring"
    response = client.post("/v1/explain", json={"texts": [text], "steps": 20, "threshold": 0.4})
    assert response.status_code == 200, response.text
    body = response.json()
    (expected,) = Classifier.load(folders["classifier"]).explain([text], steps=20, threshold=0.4)
    (got,) = body["explanations"]
    assert (body["model"], len(body["version"])) == ("reviews", 12)
    assert {"attribution", "occlusion", "prefix_probability", "hidden"} <= set(body["method"])
    assert got.keys() == expected.keys() | {"truncated"} and got["truncated"] is False
    assert (got["tokens"], got["label"], got["steps"], got["note"]) == (expected["tokens"], expected["label"],
                                                                        expected["steps"], expected["note"])
    assert got["steps"] in (20, 40, 80, 160)  # the 20 asked for, doubled while outside the completeness tolerance
    for key in ("attribution", "occlusion", "prefix_probability", "hidden", "vector"):
        np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-6, err_msg=key)
    assert abs(got["probability"] - expected["probability"]) < 1e-6
    assert abs(sum(got["attribution"]) - (got["logit"] - got["baseline_logit"])) < 0.01 * abs(got["logit"]) + 1e-4


def test_explain_limits_give_json_errors(client):
    def error(body, status=422):
        response = client.post("/v1/explain", json=body)
        assert response.status_code == status, response.text
        return response.json()["error"]

    assert "at least 1 text" in error({"texts": []})
    assert "at most 4 texts per request (max_explain_texts), got 5" in error({"texts": ["a"] * 5})
    assert "steps: Input should be greater than or equal to 1" in error({"texts": ["a"], "steps": 0})
    assert "steps: Input should be less than or equal to 200" in error({"texts": ["a"], "steps": 201})
    assert "texts/0: Input should be a valid string" in error({"texts": [1]})
    assert "colour: Extra inputs are not permitted" in error({"texts": ["a"], "colour": 1})
    assert "no classifier named 'x'" in error({"texts": ["a"], "model": "x"})
    cut = client.post("/v1/explain", json={"texts": ["great " * 20], "steps": 4}).json()["explanations"][0]
    assert cut["truncated"] is True and cut["text"] == ("great " * 20)[:50]
    assert "/v1/explain" in client.get("/openapi.json").json()["paths"]


def test_an_explanation_runs_beside_predictions_and_its_queue_is_bounded(folders):
    """Explanations have their own thread and queue: while one is running (held here), /v1/predict answers,
    and an explain request that would overflow max_explain_queue gets 503 + Retry-After at once."""
    settings = ServeSettings(models=[str(folders["classifier"])], max_explain_texts=2, max_explain_queue=2)
    served = load_served(settings.models)
    running, release = threading.Event(), threading.Event()
    explain = served[0].run_explain

    def held(requests):
        running.set()
        assert release.wait(30)
        return explain(requests)

    served[0].run_explain = held
    with TestClient(create_app(settings, served)) as c, ThreadPoolExecutor(1) as pool:
        first = pool.submit(c.post, "/v1/explain", json={"texts": ["great film .", "awful plot ."], "steps": 4})
        assert running.wait(30)
        predicted = c.post("/v1/predict", json={"texts": ["great film ."]})
        refused = c.post("/v1/explain", json={"texts": ["dull ."]})
        assert not first.done()  # still held: the prediction did not wait for it
        release.set()
        answered = first.result(30)
    assert predicted.status_code == 200 and answered.status_code == 200
    assert len(answered.json()["explanations"]) == 2
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "queue is full (2 texts pending, limit 2)" in refused.json()["error"]


def test_access_log_has_one_json_line_per_request(client):
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(json.loads(record.getMessage()))
    access_log.addHandler(handler)
    try:
        client.post("/v1/predict", json={"texts": ["great", "awful"]})
        client.post("/v1/predict", json={"texts": []})
    finally:
        access_log.removeHandler(handler)
    ok, bad = lines
    assert (ok["path"], ok["status"], ok["texts"], ok["batch_size"], ok["model"]) == ("/v1/predict", 200, 2, 2, "reviews")
    assert ok["latency_ms"] > 0 and (bad["status"], bad["batch_size"]) == (422, None)


# --- the micro-batcher ---------------------------------------------------------------------------------


def run_concurrently(batcher_kwargs: dict, requests: list[list[int]]):
    """Submit `requests` while the first batch is held in the worker; returns (results, calls)."""
    calls, gate = [], threading.Event()

    def run_batch(items):
        gate.wait(5)
        calls.append(list(items))
        return [x * 10 for x in items]

    async def main():
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(run_batch, executor, **batcher_kwargs)
            batcher.start()
            first = asyncio.ensure_future(batcher.submit(requests[0]))
            await asyncio.sleep(0.05)  # the first batch is now running (held by the gate)
            rest = [asyncio.ensure_future(batcher.submit(r)) for r in requests[1:]]
            await asyncio.sleep(0.01)
            gate.set()
            results = await asyncio.gather(first, *rest, return_exceptions=True)
            await batcher.stop()
            return results

    return asyncio.run(main()), calls


def test_requests_waiting_together_share_one_forward_pass():
    requests = [[0]] + [[i, i + 100] for i in range(1, 11)]
    results, calls = run_concurrently({"max_batch_texts": 64, "max_wait_s": 0.001}, requests)
    assert calls == [[0], [x for r in requests[1:] for x in r]]  # 2 passes, arrival order kept
    assert results[0] == ([0], 1) and all(res == ([10 * x for x in r], 20) for res, r in zip(results[1:], requests[1:]))


def test_batches_are_bounded_and_never_split_a_request():
    requests = [[0]] + [[i] * 3 for i in range(1, 6)]  # 15 texts waiting, at most 7 per pass
    _, calls = run_concurrently({"max_batch_texts": 7, "max_wait_s": 0.001}, requests)
    assert [len(c) for c in calls] == [1, 6, 6, 3]


def test_without_batching_every_request_is_its_own_pass():
    requests = [[0]] + [[i] for i in range(1, 6)]
    _, calls = run_concurrently({"batching": False}, requests)
    assert calls == [[i] for i in range(6)]


def test_a_full_queue_refuses_at_once_and_frees_when_done():
    requests = [[0, 0]] + [[i] * 3 for i in range(1, 4)]  # 2 running + 3 + 3 fit in 8; the third 3 does not
    results, calls = run_concurrently({"max_queue_texts": 8, "max_wait_s": 0.001}, requests)
    assert isinstance(results[3], QueueFull) and "queue is full (8 texts pending, limit 8)" in str(results[3])
    assert results[3].retry_after == 1 and len(calls) == 2
    again, _ = run_concurrently({"max_queue_texts": 8, "max_wait_s": 0.001}, [[1] * 8])
    assert again == [([10] * 8, 8)]
