"""The control panel in a real browser (issue 15, acceptance): Debian's chromium, headless, driven
by Selenium against a bridge running in this process on real ports. Few tests, each waiting
explicitly for what it expects (no sleeps as synchronisation). Skipped, saying why, where
chromium, chromedriver or selenium is missing; CI installs them (.ci/system-deps.sh)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from bridge_harness import UdpReceiver, vmc_frame_values, wait_until
from conftest import unassigned_port
from panel_harness import panel_config, running_panel

from vadbridge.daemon import Bridge
from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.tools.panel_screenshot import browser_missing, headless_chromium, wait_for
from vadbridge.tools.preview_face import face_geometry

MISSING = browser_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no headless browser: {MISSING}")

SMILE_BAR = '.bar[data-name="mouthSmileLeft"]'


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def open_panel(driver: Any, port: int) -> None:
    driver.get(f"http://127.0.0.1:{port}/")
    wait_for(driver, lambda d: by_id(d, "status").text == "connected", "the page to connect")


def smile_bar(driver: Any) -> float:
    return float(css(driver, SMILE_BAR).get_attribute("data-value"))


def vmc_smile(receiver: UdpReceiver) -> float:
    frames = receiver.receive(0.05)
    return vmc_frame_values(frames[-1][1])["MouthSmileLeft"] if frames else 0.0


def test_happiness_clicked_on_the_page_smiles_on_the_wire_and_on_the_page(
    browser: Any, vmc: UdpReceiver
) -> None:
    with running_panel(panel_config(vmc.port)) as (bridge, panel):
        open_panel(browser, panel.port)
        assert smile_bar(browser) < 0.2 and vmc_smile(vmc) < 0.2
        css(browser, 'button[data-emotion="happiness"]').click()
        wait_until(lambda: vmc_smile(vmc) > 0.5, "the VMC output's mouthSmileLeft to rise")
        wait_for(browser, lambda d: smile_bar(d) > 0.5, "the page's smile bar to rise")
        assert bridge.input_stats.snapshot()["accepted"] == {"web": 1}


def target(bridge: Bridge) -> list[float]:
    values: list[float] = bridge.table.target_vad[0].tolist()
    return values


def test_dragging_the_pad_moves_the_bridges_vad(browser: Any, vmc: UdpReceiver) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    with running_panel(panel_config(vmc.port)) as (bridge, panel):
        open_panel(browser, panel.port)
        pad = by_id(browser, "pad")
        # From the centre (neutral) towards the top right: pleasant and aroused.
        ActionChains(browser).move_to_element(pad).click_and_hold() \
            .move_by_offset(40, -40).move_by_offset(40, -40).release().perform()
        wait_until(lambda: target(bridge)[0] > 0.3 and target(bridge)[1] > 0.3,
                   "valence and arousal to follow the pad")
        accepted = bridge.input_stats.snapshot()["accepted"]["web"]
        assert accepted >= 2  # a press and at least one move: partial updates, dominance kept
        assert target(bridge)[2] == 0.0
        wait_until(lambda: bridge.table.state_vad[0][0] > 0.3, "the smoothed VAD to follow")


def test_an_attack_time_from_the_page_takes_effect_and_a_refusal_says_why(
    browser: Any, vmc: UdpReceiver
) -> None:
    from selenium.webdriver.common.keys import Keys

    with running_panel(panel_config(vmc.port)) as (bridge, panel):
        open_panel(browser, panel.port)
        field = by_id(browser, "attack_ms")
        assert field.get_attribute("value") == "120"
        field.clear()
        field.send_keys("45", Keys.ENTER)
        wait_for(browser, lambda d: by_id(d, "tune-message").text == "applied", "applied")
        assert bridge.animator.tau_s.face.attack_s == pytest.approx(0.045)  # type: ignore[union-attr]
        field.clear()
        field.send_keys("-5", Keys.ENTER)
        wait_for(browser, lambda d: "refused" in by_id(d, "tune-message").text, "the refusal")
        assert by_id(browser, "tune-message").text == (
            "refused: smoothing.attack_ms: expected a number >= 0, got -5")
        assert bridge.animator.tau_s.face.attack_s == pytest.approx(0.045)  # type: ignore[union-attr]


def test_the_page_reconnects_when_the_bridge_restarts(browser: Any, vmc: UdpReceiver) -> None:
    config = panel_config(vmc.port, web=f"port: {unassigned_port(socket.SOCK_STREAM)}")
    with running_panel(config) as (_bridge, panel):
        open_panel(browser, panel.port)
    wait_for(browser, lambda d: by_id(d, "status").text == "reconnecting…", "the page to notice")
    with running_panel(config) as (bridge, _panel):
        wait_for(browser, lambda d: by_id(d, "status").text == "connected", "a reconnection")
        css(browser, 'button[data-emotion="sadness"]').click()
        wait_until(lambda: bridge.input_stats.snapshot()["accepted"].get("web") == 1,
                   "the restarted bridge to take the page's input")


def test_the_pages_face_is_drawn_with_the_previews_geometry(browser: Any,
                                                            vmc: UdpReceiver) -> None:
    """face.js is a port of tools/preview_face.py: same numbers, rule for rule."""
    rng = np.random.default_rng(15)
    cases = [np.zeros(52), np.ones(52), *rng.uniform(-0.2, 1.2, (6, 52))]
    with running_panel(panel_config(vmc.port)) as (_bridge, panel):
        open_panel(browser, panel.port)
        for weights in cases:
            page = browser.execute_script(
                "return window.vadbridgePanel.faceGeometry(arguments[0], arguments[1])",
                weights.tolist(), list(ARKIT_NAMES))
            assert_same_geometry(page, face_geometry(weights))
        severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert not severe, severe  # no CSP violation, no script error, nothing missing


def assert_same_geometry(page: dict[str, Any], python: Any) -> None:
    close = {"rtol": 0, "atol": 1e-9}
    np.testing.assert_allclose(page["outline"], python.outline, **close)
    np.testing.assert_allclose(page["nose"], python.nose, **close)
    for side in range(2):
        np.testing.assert_allclose(page["brows"][side], python.brows[side], **close)
        eye, python_eye = page["eyes"][side], python.eyes[side]
        np.testing.assert_allclose(eye["upperLid"], python_eye.upper_lid, **close)
        np.testing.assert_allclose(eye["lowerLid"], python_eye.lower_lid, **close)
        np.testing.assert_allclose(eye["irisCentre"], python_eye.iris_centre, **close)
        assert eye["opening"] == pytest.approx(python_eye.opening, abs=1e-9)
        cheek, python_cheek = page["cheeks"][side], python.cheeks[side]
        np.testing.assert_allclose(cheek["centre"], python_cheek.centre, **close)
        assert (cheek["radius"], cheek["blush"]) == pytest.approx(
            (python_cheek.radius, python_cheek.blush), abs=1e-9)
        line = np.array(page["sneerLines"][side]).reshape(-1, 2)
        np.testing.assert_allclose(line, python.sneer_lines[side], **close)
    mouth, python_mouth = page["mouth"], python.mouth
    np.testing.assert_allclose(mouth["upperLip"], python_mouth.upper_lip, **close)
    np.testing.assert_allclose(mouth["lowerLip"], python_mouth.lower_lip, **close)
    assert (mouth["opening"], mouth["width"], mouth["tongue"]) == pytest.approx(
        (python_mouth.opening, python_mouth.width, python_mouth.tongue), abs=1e-9)
    np.testing.assert_allclose(mouth["cornerLift"], python_mouth.corner_lift, **close)
