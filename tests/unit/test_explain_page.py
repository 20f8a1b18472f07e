"""The explain page and the map in a real browser (headless Chromium, tests/browser.py): they render
offline from file://, show every token as a span, and log no console errors."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")
TEXTS = ["great movie and wonderful plot unknownword . the film was boring", "awful film " * 8]


@pytest.fixture(scope="module")
def model_folder(tiny_imdb, tiny_vectors, tmp_path_factory):
    clf = Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), ModelConfig(units=4, cell="gru", head="max", maxlen=12),
                           TrainConfig(epochs=2, batch_size=16), progress=False, log=lambda s: None)
    return clf.save(tmp_path_factory.mktemp("page") / "gru")


def _open(driver, path):
    driver.get(path.as_uri())
    png = driver.get_screenshot_as_png()
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return png, errors


def test_explain_page_renders_every_token_in_chromium(chromium_driver, model_folder, tmp_path):
    page = tmp_path / "report.html"
    assert main(["explain", str(model_folder), *TEXTS, "--html", str(page)]) == 0
    png, errors = _open(chromium_driver, page)
    assert png.startswith(b"\x89PNG") and len(png) > 20_000 and errors == []
    (tmp_path / "screenshot.png").write_bytes(png)
    spans = chromium_driver.find_elements(By.CSS_SELECTOR, ".tokens span.tok")
    # text 1: 10 read + 1 OOV; text 2: 16 tokens, 12 read and 4 cut by maxlen
    assert [s.text for s in spans] == TEXTS[0].split() + TEXTS[1].split()
    classes = [s.get_attribute("class") for s in spans]
    assert classes.count("tok in") == 22 and classes.count("tok oov") == 1 and classes.count("tok cut") == 4
    assert "position 0: attribution" in spans[0].get_attribute("title")
    images = chromium_driver.find_elements(By.TAG_NAME, "img")
    assert len(images) == 2 and all(img.get_property("naturalWidth") > 100 for img in images)  # data: URIs decoded
    assert "ten strongest positive" in chromium_driver.page_source


def test_map_page_has_one_mark_per_document_with_its_review(chromium_driver, model_folder, tiny_imdb, tmp_path):
    page = tmp_path / "map.html"
    assert main(["encode", str(model_folder), "--data", str(tiny_imdb), "--map", str(page)]) == 0
    png, errors = _open(chromium_driver, page)
    assert png.startswith(b"\x89PNG") and len(png) > 5_000 and errors == []
    marks = chromium_driver.find_elements(By.CSS_SELECTOR, "svg circle, svg path")
    assert len(marks) == 40
    titles = chromium_driver.find_elements(By.CSS_SELECTOR, "svg title")
    assert all("P = " in t.get_attribute("textContent") and "true " in t.get_attribute("textContent") for t in titles)
