"""The page at `/` in headless Chromium against a real `loopynet serve` on 127.0.0.1: type a review,
submit, read probability and label from the DOM; they equal the library's prediction, and the tokens the
page colours carry the library's Integrated Gradients attributions (through POST /v1/explain).

The page's screenshot in the README was taken by this test with a real model:
LOOPYNET_PAGE_MODEL=runs/slice LOOPYNET_PAGE_SCREENSHOT=docs/serve-page.png pytest tests/integration/test_page_browser.py
"""

from __future__ import annotations

import os
import shutil

import pytest

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from tests.serving import Server

REVIEW = "A wonderful, moving film with a superb cast. I loved every minute of it."


@pytest.fixture(scope="module")
def folder(tiny_imdb, tiny_vectors, tmp_path_factory):
    if os.environ.get("LOOPYNET_PAGE_MODEL"):
        return os.environ["LOOPYNET_PAGE_MODEL"]
    path = tmp_path_factory.mktemp("served") / "reviews"
    Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), ModelConfig(units=4, head="max", maxlen=12),
                     TrainConfig(epochs=2, batch_size=16), progress=False, log=lambda s: None).save(path)
    return path


def test_the_page_classifies_a_typed_review(chromium_driver, folder, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with Server(str(folder), "--port", "0") as server:
        server.wait_ready()
        driver = chromium_driver
        driver.get(f"{server.url}/")
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
        driver.find_element(By.ID, "text").send_keys(REVIEW)
        driver.find_element(By.ID, "submit").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "probability").text != "–")
        label = driver.find_element(By.ID, "label").text
        probability = float(driver.find_element(By.ID, "probability").text)
        assert driver.find_element(By.ID, "error").text == ""
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "evidence-note").text != "")
        spans = driver.find_elements(By.CSS_SELECTOR, "#evidence span")
        shown = [(s.text, s.get_attribute("data-attribution"), s.get_attribute("class")) for s in spans]
        screenshot = tmp_path / "page.png"
        driver.save_screenshot(str(screenshot))
    expected = Classifier.load(folder).predict([REVIEW])[0]
    assert label == expected["label"] and abs(probability - expected["probability"]) <= 5e-5  # 4 decimals shown
    explanation = Classifier.load(folder).explain([REVIEW])[0]
    assert [text for text, _, _ in shown] == [t["token"] for t in explanation["tokens"]]
    for (_, value, css), token in zip(shown, explanation["tokens"]):
        if token["position"] is None:
            assert value is None and "unread" in css
        else:
            attribution = explanation["attribution"][token["position"]]
            assert abs(float(value) - attribution) <= 1e-6 * max(1.0, abs(attribution))
            assert ("for" if attribution >= 0 else "against") in css.split()
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("LOOPYNET_PAGE_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["LOOPYNET_PAGE_SCREENSHOT"])
