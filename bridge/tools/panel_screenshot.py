"""``python -m vadbridge.tools.panel_screenshot [PNG]``: the README's picture of the control panel.

Starts ``vadbridge run`` with the panel on a free loopback port (an OSC input, a VMC output to a
socket here), opens the page in Debian's headless chromium (Selenium, pointed at the system's
``chromium`` and ``chromedriver``: nothing is downloaded), drives it as a user would (happiness
at 0.8, a touch of surprise from the mix box), waits for the plot to fill and saves the window
to docs/images/panel.png. Needs the ``dev`` extra (selenium) and the Debian packages
``chromium`` and ``chromium-driver``. ``headless_chromium`` is what the browser tests use too.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vadbridge.benchmarks.harness import free_port, stop_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DEFAULT_OUT = Path("docs/images/panel.png")
WINDOW = (1240, 1300)
TIMEOUT_S = 30.0
_BROWSER_HINT = "apt-get install chromium chromium-driver; pip install 'vadbridge[dev]'"


def browser_missing() -> str | None:
    """Why no headless chromium can be driven here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"selenium is not installed ({_BROWSER_HINT})"
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not os.access(binary, os.X_OK):
            return f"{binary} is missing ({_BROWSER_HINT})"
    return None


@contextmanager
def headless_chromium(size: tuple[int, int] = WINDOW) -> Iterator[Any]:
    """A Selenium driver of the system's chromium, headless, quit after. The service names the
    driver binary, so Selenium Manager never looks for (or downloads) one."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--hide-scrollbars", f"--window-size={size[0]},{size[1]}",
                     "--force-device-scale-factor=1"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Any, what: str, timeout_s: float = TIMEOUT_S) -> Any:
    """``condition(driver)`` once truthy (polled by Selenium); fails naming ``what``."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.05).until(
        condition, message=f"timed out waiting for {what}")


@contextmanager
def _bridge(folder: Path) -> Iterator[str]:
    """``vadbridge run`` with the panel; yields the page's URL."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # VMC lands here, unread
    receiver.bind(("127.0.0.1", 0))
    web_port = free_port()
    config = folder / "panel-demo.yaml"
    config.write_text(
        "stats_interval_s: 0\n"
        f"inputs: [{{type: osc, host: 127.0.0.1, port: {free_port(socket.SOCK_DGRAM)}}}]\n"
        f"outputs: [{{type: vmc, host: 127.0.0.1, port: {receiver.getsockname()[1]}}}]\n"
        f"web: {{enabled: true, host: 127.0.0.1, port: {web_port}}}\n"
        "liveliness: {blink: true, seed: 3}\n")
    log = folder / "run.log"
    url = f"http://127.0.0.1:{web_port}/"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "vadbridge", "run", "--config",
                                    str(config)], stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_page(url, process, log)
        yield url
    finally:
        stop_process(process)
        receiver.close()


def _wait_for_page(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the page answers (the bridge is up); RuntimeError with its log if it never does."""
    give_up_s = time.monotonic() + TIMEOUT_S
    while process.poll() is None and time.monotonic() < give_up_s:
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"vadbridge run did not serve {url}:\n{log.read_text(errors='replace')}")


def take(out: Path) -> None:
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory(prefix="vadbridge-panel-") as folder, \
            _bridge(Path(folder)) as url, headless_chromium() as driver:
        driver.get(url)
        wait_for(driver, lambda d: d.find_element(By.ID, "status").text == "connected",
                 "the page to connect")
        intensity = driver.find_element(By.ID, "intensity")
        driver.execute_script("arguments[0].value = 0.8; arguments[0].dispatchEvent("
                              "new Event('input'))", intensity)
        driver.find_element(By.CSS_SELECTOR, 'button[data-emotion="happiness"]').click()
        wait_for(driver, lambda d: float(d.find_element(
            By.CSS_SELECTOR, '.bar[data-name="mouthSmileLeft"]').get_attribute("data-value"))
            > 0.4, "a smile")
        mix = driver.find_element(By.ID, "mix")
        mix.send_keys("happiness:0.8+surprise:0.2")
        wait_for(driver, lambda d: driver.execute_script(
            "return window.vadbridgePanel.state.history.length") > 90, "3 s of plot")
        driver.find_element(By.ID, "send-mix").click()
        wait_for(driver, lambda d: driver.execute_script(
            "return window.vadbridgePanel.state.history.length") > 150, "2 s more of plot")
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)
    missing = browser_missing()
    if missing is not None:
        print(f"panel_screenshot: {missing}", file=sys.stderr)
        return 2
    take(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
