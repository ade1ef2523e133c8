"""The README's pictures of the drawing page: a digit drawn in headless Chromium, on a desktop and a phone-sized screen.

    python -m tools.screenshots   # after `make repro`: writes docs/images/serve-desktop.png and serve-phone.png

Starts the server of `make serve` on a free port of 127.0.0.1 with this checkout's model, draws with
pointer events (as a person does), waits for the reading, and saves each screenshot.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
# A hand-drawn 2 and 5, as strokes of points on the pad (0-1 across and down).
STROKES = {
    "desktop": [
        [
            (0.3, 0.3),
            (0.4, 0.2),
            (0.55, 0.18),
            (0.68, 0.27),
            (0.66, 0.42),
            (0.5, 0.58),
            (0.3, 0.78),
            (0.45, 0.77),
            (0.72, 0.78),
        ]
    ],
    "phone": [
        [(0.68, 0.2), (0.38, 0.2), (0.35, 0.45)],
        [(0.35, 0.45), (0.55, 0.42), (0.68, 0.55), (0.65, 0.72), (0.5, 0.8), (0.32, 0.75)],
    ],
}
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def draw(browser: webdriver.Chrome, strokes: list[list[tuple[float, float]]]) -> None:
    pad = browser.find_element(By.ID, "pad")
    side = pad.rect["width"]
    pen = PointerInput(interaction.POINTER_PEN, "pen")  # type: ignore[no-untyped-call]  # selenium: no annotations
    builder = ActionBuilder(browser, mouse=pen, duration=30)
    pointer: Any = builder.pointer_action  # its methods carry no annotations either
    for stroke in strokes:
        x, y = stroke[0]
        pointer.move_to(pad, int((x - 0.5) * side), int((y - 0.5) * side))
        pointer.pointer_down()
        for x, y in stroke[1:]:
            pointer.move_to(pad, int((x - 0.5) * side), int((y - 0.5) * side))
        pointer.pointer_up()
    builder.perform()


def main() -> int:
    if not (ROOT / "models/model.tflite").is_file():
        print("tools.screenshots: expected models/model.tflite (run `make repro`). Received: no file", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "mnist_dvc.web.server", "--port", "0", "--quiet", "--repo", str(ROOT)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    options = webdriver.ChromeOptions()
    browser_path = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if browser_path:
        options.binary_location = browser_path
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    driver_path = shutil.which("chromedriver")
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        assert server.stdout is not None
        url = "http://" + server.stdout.readline().split("http://", 1)[1].split("/", 1)[0] + "/"
        for name, (width, height) in SIZES.items():
            browser.set_window_size(width, height)
            browser.get(url)
            draw(browser, STROKES[name])
            WebDriverWait(browser, 20).until(
                lambda driver: driver.find_element(By.CSS_SELECTOR, ".result").get_attribute("data-state") == "done"
            )
            time.sleep(0.3)
            target = ROOT / f"docs/images/serve-{name}.png"
            if name == "phone":  # the whole page, as tall as it is
                full = browser.execute_script("return document.documentElement.scrollHeight")
                browser.set_window_size(width, full + 140)
            browser.save_screenshot(str(target))
            label = browser.find_element(By.ID, "label").text
            print(f"wrote {target.relative_to(ROOT)} ({width}x{height}; the page read {label!r})")
    finally:
        browser.quit()
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
