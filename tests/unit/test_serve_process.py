"""`loopynet serve` as a real uvicorn process on 127.0.0.1: graceful SIGTERM (in-flight requests finish,
new ones are refused), a client that disconnects mid-request, /v1/explain, a damaged model folder at
start, a port already in use, and --workers 2."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import threading
import time

import httpx
import pytest

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from tests.serving import Server


@pytest.fixture(scope="module")
def folder(tiny_imdb, tiny_vectors, tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "reviews"
    Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), ModelConfig(units=4, maxlen=12),
                     TrainConfig(epochs=1, batch_size=16), progress=False, log=lambda s: None).save(path)
    return path


def test_sigterm_finishes_in_flight_requests_and_refuses_new_ones(folder):
    with Server(str(folder), "--port", "0", "--batch-wait-ms", "1000") as server:  # a request waits 1 s
        server.wait_ready()
        answers = []
        slow = threading.Thread(target=lambda: answers.append(
            httpx.post(f"{server.url}/v1/predict", json={"texts": ["great film ."]}, timeout=30)))
        slow.start()
        time.sleep(0.4)  # the request is in the batcher's window now
        server.process.terminate()  # SIGTERM
        time.sleep(0.4)
        with pytest.raises(httpx.ConnectError):  # a request during shutdown: the port no longer accepts
            httpx.post(f"{server.url}/v1/predict", json={"texts": ["late"]}, timeout=5)
        slow.join(30)
        assert server.wait_exit() == -signal.SIGTERM  # after the graceful stop uvicorn re-raises the signal

    assert answers[0].status_code == 200 and answers[0].json()["predictions"][0]["text"] == "great film ."


@pytest.fixture(scope="module")
def running(folder):
    with Server(str(folder), "--port", "0", "--batch-wait-ms", "300") as server:
        yield server.wait_ready()


def test_a_client_that_disconnects_mid_request_harms_nothing(running):
    server = running
    host, port = server.url.removeprefix("http://").split(":")
    body = json.dumps({"texts": ["great film ."]}).encode()
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection((host, int(port))) as s:  # leaves halfway through its body
        s.sendall(head + body[:5])
    with socket.create_connection((host, int(port))) as s:  # leaves while its texts wait for a batch
        s.sendall(head + body)
    time.sleep(0.6)
    response = httpx.post(f"{server.url}/v1/predict", json={"texts": ["awful plot ."]}, timeout=10)
    assert response.status_code == 200 and httpx.get(f"{server.url}/healthz").status_code == 200
    logged = [json.loads(line) for line in server.stderr_lines if line.startswith("{")]
    assert [entry["status"] for entry in logged if entry["path"] == "/v1/predict"][-1] == 200
    assert not any("Traceback" in line for line in server.stderr_lines), server.stderr_lines


def test_explain_on_a_real_server_answers_the_librarys_explanation(running, folder):
    texts = ["great wonderful film .", "the plot was awful and boring unknownword"]
    response = httpx.post(f"{running.url}/v1/explain", json={"texts": texts, "steps": 16}, timeout=120)
    assert response.status_code == 200, response.text
    expected = Classifier.load(folder).explain(texts, steps=16)
    for got, want in zip(response.json()["explanations"], expected, strict=True):
        assert (got["text"], got["tokens"], got["label"]) == (want["text"], want["tokens"], want["label"])
        assert max(abs(a - b) for a, b in zip(got["attribution"], want["attribution"], strict=True)) < 1e-6
    assert [t["status"] for t in response.json()["explanations"][1]["tokens"]][-1] == "oov"
    too_many = httpx.post(f"{running.url}/v1/explain", json={"texts": ["a"] * 5}, timeout=30)
    assert too_many.status_code == 422 and "max_explain_texts" in too_many.json()["error"]
    explained = running.access_log("/v1/explain", 2)
    assert [(e["status"], e["texts"], e["model"]) for e in explained[-2:]] == [(200, 2, "reviews"), (422, 5, None)]


def test_a_damaged_model_folder_stops_the_start_with_one_line(folder, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged)
    data = (damaged / "model.safetensors").read_bytes()
    (damaged / "model.safetensors").write_bytes(data[: len(data) // 2])
    server = Server(str(damaged), "--port", "0")
    assert server.wait_exit() == 2
    assert len(server.stderr_lines) == 1 and "the file is truncated" in server.stderr_lines[0]
    assert server.url is None  # it never listened


def test_a_second_server_on_the_same_port_is_a_clear_error(running, folder):
    first = running
    port = first.url.rsplit(":", 1)[1]
    second = Server(str(folder), "--port", port)
    assert second.wait_exit() == 2
    assert second.stderr_lines == [f"loopynet serve: error: cannot listen on 127.0.0.1:{port}: Address already in "
                                   "use (another server is listening there? stop it or pass another --port)"]
    assert httpx.get(f"{first.url}/healthz").status_code == 200  # the first one is untouched


@pytest.mark.slow  # three processes importing torch: 83 s on this loaded 2-core machine
def test_two_worker_processes_serve(folder):
    with Server(str(folder), "--port", "0", "--workers", "2") as server:
        server.wait_ready()
        for _ in range(4):
            response = httpx.post(f"{server.url}/v1/predict", json={"texts": ["great", "awful"]}, timeout=30)
            assert response.status_code == 200 and len(response.json()["predictions"]) == 2
