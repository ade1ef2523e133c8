"""The page of `make serve` in a real browser: Debian's headless Chromium, driven by Selenium through chromedriver.

Digits are drawn with pointer events (mouse, finger and pen) the way a person draws them, stroke by stroke;
what the page shows must be what the API answers for the canvas's own picture, and the digits must be read.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from mnist_dvc.model.serving import LiteRTPredictor
from mnist_dvc.own_digits.predictions import predict_image_files
from mnist_dvc.web.served_model import MODEL_PATH
from tests.test_web import png_bytes, served_repository
from tests.web_model import mnist_test_digits
from tests.web_server import request, running_server

pytestmark = pytest.mark.slow

DRAWN = 20
POINTERS = (interaction.POINTER_MOUSE, interaction.POINTER_TOUCH, interaction.POINTER_PEN)


def chromium() -> webdriver.Chrome:
    """Headless Chromium from the system (`make test` installs Debian's chromium and chromium-driver)."""
    driver_path = shutil.which("chromedriver")
    browser_path = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if driver_path is None or browser_path is None:
        pytest.fail("expected chromium and chromedriver on PATH (`make test` installs them). Received: none")
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: webdriver.Chrome, tmp_path: Path, web_model: Path) -> Iterator[str]:
    repo = served_repository(tmp_path / "repo", web_model)
    with running_server(repo, tmp_path / "server.log") as served:
        browser.set_window_size(1280, 900)
        browser.get(served.url + "/")
        yield served.url


def draw(browser: webdriver.Chrome, digit: np.ndarray, pointer_kind: str) -> None:
    """Draw a 28x28 digit on the pad as horizontal strokes over its inked runs, one pointer press per run."""
    pad = browser.find_element(By.ID, "pad")
    side = pad.rect["width"]
    cell = side / 28
    builder = ActionBuilder(browser, mouse=PointerInput(pointer_kind, pointer_kind), duration=0)
    pointer = builder.pointer_action
    for row in range(28):
        inked = np.flatnonzero(digit[row] > 100)
        if inked.size == 0:
            continue
        runs = np.split(inked, np.flatnonzero(np.diff(inked) > 1) + 1)
        for run in runs:
            y = (row + 0.5) * cell - side / 2  # offsets from the pad's centre
            pointer.move_to(pad, int((run[0] + 0.5) * cell - side / 2), int(y))
            pointer.pointer_down()
            pointer.move_to(pad, int((run[-1] + 0.5) * cell - side / 2), int(y))
            pointer.pointer_up()
    builder.perform()


def shown_reading(browser: webdriver.Chrome) -> tuple[int, str]:
    WebDriverWait(browser, 20).until(
        lambda driver: (
            driver.find_element(By.CSS_SELECTOR, ".result").get_attribute("data-state") == "done"
            and driver.find_element(By.ID, "label").get_attribute("data-label") is not None
        )
    )
    label = browser.find_element(By.ID, "label").get_attribute("data-label")
    return int(label or -1), browser.find_element(By.ID, "message").text


def test_twenty_drawn_digits_are_read_as_the_api_reads_the_canvas(
    browser: webdriver.Chrome, page: str, tmp_path: Path, web_model: Path
) -> None:
    digits, labels = mnist_test_digits(DRAWN)
    predictor = LiteRTPredictor(web_model.read_bytes())
    shown_labels = []
    for index, digit in enumerate(digits):
        browser.find_element(By.ID, "clear").click()
        draw(browser, digit, POINTERS[index % len(POINTERS)])
        shown, message = shown_reading(browser)
        canvas_png = base64.b64decode(browser.execute_script("return document.getElementById('pad').toDataURL()")[22:])
        status, answer, _ = request(f"{page}/api/predict", canvas_png, {"Content-Type": "image/png"})
        assert status == 200 and shown == answer["label"], (index, shown, answer["message"])
        assert message == answer["message"]
        # The same canvas as a file through predict_images' code: the same label.
        saved = tmp_path / f"canvas-{index}.png"
        saved.write_bytes(canvas_png)
        assert predict_image_files(predictor.predict, [saved])[0].top_labels[0] == shown
        seen = browser.execute_script(
            "return Array.from(document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data)"
        )
        assert np.array_equal(np.array(seen, dtype=np.uint8)[::4].reshape(28, 28), np.array(answer["image"]))
        shown_labels.append(shown)
    correct = int(np.sum(np.array(shown_labels) == labels))
    assert correct >= DRAWN - 2, f"read {correct} of {DRAWN}: shown {shown_labels}, drawn {labels.tolist()}"


def test_clear_upload_and_a_blank_upload(browser: webdriver.Chrome, page: str, tmp_path: Path) -> None:
    digits, labels = mnist_test_digits(3)
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes(255 - np.kron(digits[2], np.ones((8, 8), np.uint8))))  # dark ink on white, 224x224
    upload = browser.find_element(By.ID, "upload")
    upload.send_keys(str(photo))
    shown, _ = shown_reading(browser)
    assert shown == labels[2]
    blank = tmp_path / "blank.png"
    blank.write_bytes(png_bytes(np.full((64, 64), 255, np.uint8)))
    upload.send_keys(str(blank))
    WebDriverWait(browser, 20).until(lambda driver: "blank" in driver.find_element(By.ID, "message").text)
    assert browser.find_element(By.ID, "label").text == ""
    browser.find_element(By.ID, "clear").click()
    assert browser.find_element(By.ID, "message").text == "Draw a digit to start."


def test_every_control_is_reachable_by_keyboard(browser: webdriver.Chrome, page: str) -> None:
    reached = []
    body = browser.find_element(By.TAG_NAME, "body")
    body.click()
    for _ in range(8):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        active = browser.switch_to.active_element
        reached.append(active.get_attribute("id") or active.get_attribute("href") or active.tag_name)
    assert "clear" in reached and "upload" in reached and any(str(item).endswith("/api/docs") for item in reached)


def test_a_phone_sized_screen_shows_the_whole_pad_without_sideways_scrolling(
    browser: webdriver.Chrome, page: str
) -> None:
    browser.set_window_size(390, 844)
    browser.get(page + "/")
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    pad = browser.find_element(By.ID, "pad").rect
    assert pad["x"] >= 0 and pad["x"] + pad["width"] <= width and pad["width"] >= 250
    draw(browser, mnist_test_digits(1)[0][0], interaction.POINTER_TOUCH)
    assert shown_reading(browser)[0] == mnist_test_digits(1)[1][0]


def test_before_any_model_the_page_says_to_run_make_repro(browser: webdriver.Chrome, tmp_path: Path) -> None:
    empty = served_repository(tmp_path / "empty", None)
    with running_server(empty, tmp_path / "server.log") as served:
        browser.get(served.url + "/")
        banner = browser.find_element(By.ID, "no-model")
        WebDriverWait(browser, 20).until(lambda _driver: banner.is_displayed())
        assert "make repro" in banner.text
        assert not browser.get_log("browser") or all(
            entry["level"] != "SEVERE" or "/api/health" in entry["message"] for entry in browser.get_log("browser")
        )
        assert MODEL_PATH not in browser.find_element(By.ID, "model-facts").text


def test_every_chart_of_dvc_plots_show_draws_offline(
    browser: webdriver.Chrome, small_pipeline: Path, tmp_path: Path
) -> None:
    """`dvc plots show` with the committed template (.dvc/config's plots.html_template): no script from another
    host, and every interactive chart draws in the browser from the libraries inside the page."""
    from tools.workspace import dvc

    output = tmp_path / "plots_page"  # not in the repository: the worker's other tests share it
    dvc(small_pipeline, "plots", "show", "-o", str(output))
    page = (output / "index.html").read_text()
    assert "cdn." not in page and "<script src=" not in page
    charts = page.count("vegaEmbed(")
    assert charts == 5, charts
    browser.get_log("browser")  # what earlier pages logged is not this page's
    browser.get((output / "index.html").as_uri())
    drawn = (
        "return Array.from(document.querySelectorAll('.vega-embed canvas, .vega-embed svg'))"
        ".filter(e => e.getBoundingClientRect().width > 50 && e.getBoundingClientRect().height > 50).length"
    )
    WebDriverWait(browser, 30).until(lambda driver: driver.execute_script(drawn) == charts)
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
