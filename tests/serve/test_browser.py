"""The demo in a real browser: headless Chromium (Selenium) against ``egmt serve`` run as a command.

It shows a one-line message for bad uploads, then fuses a bundled pair with typed entities and
shows the very pixels ``egmt fuse`` writes. Needs Debian's ``chromium`` and ``chromium-driver``
(.ci/run installs them): skipped without them, except under CI (CI=true), where that fails.
EGMT_SERVE_SCREENSHOT=PATH also saves the page after the fusion there (docs/figures/serve.png).
"""

from __future__ import annotations

import base64
import io
import os
import queue
import re
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from tests.serve.conftest import SAMPLES, egmt_fuse_pixels
from tests.shared_data import REPO

pytestmark = pytest.mark.browser
ENTITIES = "person, grass, bush"


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = "headless Chromium not found (apt-get install chromium chromium-driver)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI must run the browser test", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def server():
    """``egmt serve`` on a free port of 127.0.0.1 (a subprocess, stopped at the end): its URL."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "egmt", "serve", "--port", "0", "--device", "cpu", "--max-upload-mb", "0.2"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        seen = []
        while True:
            try:
                line = lines.get(timeout=180)
            except queue.Empty:
                pytest.fail(f"egmt serve printed no address in 180 s: {''.join(seen)[-2000:]}")
            seen.append(line)
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
            if found:
                yield found.group(0)
                break
            if proc.poll() is not None:
                pytest.fail(f"egmt serve exited with {proc.returncode}: {''.join(seen)[-2000:]}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def _decode(data_uri: str) -> np.ndarray:
    head, _, payload = data_uri.partition(",")
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))


def test_the_page_fuses_an_uploaded_pair_as_egmt_fuse_does(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 120)
    browser.get(server)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sample option")) == 5)  # "(none)" + 4 samples
    message = browser.find_element(By.ID, "message")

    def fuse_and_wait_for_message() -> str:
        browser.find_element(By.ID, "fuse").click()
        wait.until(ec.visibility_of(message))
        return message.text

    # bad input: a text file as the infrared image (the server refuses it)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    browser.find_element(By.ID, "ir").send_keys(str(notes))
    browser.find_element(By.ID, "vi").send_keys(str(SAMPLES / "vi" / "20.png"))
    assert fuse_and_wait_for_message() == "infrared 'notes.txt': not an image file Pillow can read"
    # a huge upload (the limit is 0.2 MB here): a message, nothing fused
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\0" * 300_000)
    browser.find_element(By.ID, "ir").send_keys(str(huge))
    text = fuse_and_wait_for_message()
    assert text.startswith("upload too large") and "0.2 MB" in text
    assert not browser.find_element(By.ID, "results").is_displayed()

    # the server still serves: upload a bundled pair, type entities, fuse
    browser.find_element(By.ID, "ir").send_keys(str(SAMPLES / "ir" / "20.png"))
    browser.find_element(By.ID, "entities").send_keys(ENTITIES)
    browser.find_element(By.ID, "fuse").click()
    fused = browser.find_element(By.ID, "fused")
    wait.until(lambda d: (fused.get_attribute("src") or "").startswith("data:image/png"))
    wait.until(ec.visibility_of_element_located((By.ID, "results")))
    assert not message.is_displayed()

    shown = _decode(fused.get_attribute("src"))
    np.testing.assert_array_equal(shown, egmt_fuse_pixels("20", ENTITIES, tmp_path))
    download = browser.find_element(By.ID, "download")
    assert download.get_attribute("href") == fused.get_attribute("src")
    assert download.get_attribute("download") == "20_fused.png"
    used = browser.find_element(By.ID, "entities-used").text
    assert "source: typed" in used and all(e in used for e in ("person", "grass", "bush"))
    heatmaps = browser.find_elements(By.CSS_SELECTOR, "#heatmaps img")
    assert [h.get_attribute("alt") for h in heatmaps] == ["person", "grass", "bush"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#scores tr")) == 6
    # the before/after slider uncovers the fused image from the left
    browser.execute_script("const s = document.getElementById('slider'); s.value = 30; s.dispatchEvent(new Event('input'));")
    assert browser.find_element(By.ID, "after").value_of_css_property("clip-path") == "inset(0px 0px 0px 30%)"

    target = os.environ.get("EGMT_SERVE_SCREENSHOT")
    if target:
        browser.execute_script("const s = document.getElementById('slider'); s.value = 50; s.dispatchEvent(new Event('input'));")
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, height + 140)  # the window's frame; the page then fits the viewport
        browser.save_screenshot(target)
        Image.open(target).convert("RGB").save(target, optimize=True)  # no alpha, smaller
