"""The control panel in a real browser (issue 15, acceptance): Debian's chromium, headless, driven
by Selenium against a real ``vadbridge run`` subprocess on loopback ports (``panel_process``).
What the bridge did is read from outside it only: its VMC output decoded from real UDP (by
python-osc), its log (the stats lines, the ``-v`` lines of accepted inputs, the reload lines)
and the page. Each test waits explicitly for what it expects (no sleeps as synchronisation).
Skipped, saying why, where chromium, chromedriver or selenium is missing; CI installs them
(.ci/system-deps.sh)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bridge_harness import UdpReceiver, decode_vmc, osc, send_osc, vmc_frame_values, wait_until
from panel_process import Accepted, PanelProcess, accepted_lines, panel_process, stats_accepted

from vadbridge.model.arkit import ARKIT_NAMES
from vadbridge.model.emotions import BASIC_EMOTIONS
from vadbridge.tools.panel_screenshot import browser_missing, headless_chromium, wait_for
from vadbridge.tools.preview_face import face_geometry

MISSING = browser_missing()
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(MISSING is not None, reason=f"no headless browser: {MISSING}")]

SMILE_BAR = '.bar[data-name="mouthSmileLeft"]'
SMILE = "MouthSmileLeft"  # the VMC output's (Perfect Sync) name of mouthSmileLeft
HAPPINESS = BASIC_EMOTIONS["happiness"]
RISE = 1 - np.exp(-1)  # a first-order step is 63 % of the way after one time constant
STILL = 1e-4  # a smile that moved less than this over STILL_S has settled
STILL_S = 0.5
PAD_TOLERANCE = 0.02  # see the pad test


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def bridge(tmp_path: Path, vmc: UdpReceiver) -> Iterator[PanelProcess]:
    with panel_process(tmp_path, vmc.port) as process:
        yield process


# --- the page -----------------------------------------------------------------------------------


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def status(driver: Any) -> str:
    return str(by_id(driver, "status").text)


def open_panel(driver: Any, bridge: PanelProcess) -> None:
    """The page, connected, with the browser's log of the pages before it discarded (a page of
    an earlier test went on trying to reconnect to its stopped bridge)."""
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get(bridge.url)
    wait_for(driver, lambda d: status(d) == "connected", "the page to connect")
    wait_for(driver, lambda d: by_id(d, "vad-now").text, "the first face update")


def click_emotion(driver: Any, emotion: str) -> None:
    css(driver, f'button[data-emotion="{emotion}"]').click()


def smile_bar(driver: Any) -> float:
    return float(css(driver, SMILE_BAR).get_attribute("data-value"))


def page_vad(driver: Any) -> tuple[list[float], list[float]]:
    """The page's readout under the face: ``VAD v a d   target v a d`` (2 decimals; Selenium
    reads the spaces collapsed)."""
    match = re.fullmatch(r"VAD (.+) target (.+)", by_id(driver, "vad-now").text)
    assert match is not None, by_id(driver, "vad-now").text
    smoothed, target = ([float(x) for x in group.split()] for group in match.groups())
    return smoothed, target


def tune(driver: Any, field: str, text: str) -> None:
    """Type ``text`` over a Tune field and submit the form (Enter), as a user does."""
    from selenium.webdriver.common.keys import Keys

    element = by_id(driver, field)
    element.clear()
    element.send_keys(text, Keys.ENTER)


def tune_message(driver: Any) -> str:
    return str(by_id(driver, "tune-message").text)


# --- the wire -----------------------------------------------------------------------------------


def vmc_smile(receiver: UdpReceiver) -> float:
    """The newest VMC frame's MouthSmileLeft (frames come every 1/60 s: idle refresh is off)."""
    return timed_smiles(receiver, lambda _frames: True)[-1][1]


def timed_smiles(receiver: UdpReceiver, enough: Callable[[list[tuple[float, float]]], bool],
                 timeout_s: float = 30.0) -> list[tuple[float, float]]:
    """``(frame time, MouthSmileLeft)`` of every VMC frame from now on, until ``enough(them)``.
    The time is the frame's own ``/VMC/Ext/T`` (the frame loop's clock), so how late this
    process reads the socket changes nothing."""
    frames: list[tuple[float, float]] = []
    give_up_s = time.monotonic() + timeout_s
    while not (frames and enough(frames)):
        assert time.monotonic() < give_up_s, f"timed out: {frames[-5:]}"
        for _, data in receiver.receive(0.05):
            (time_s,) = (params[0] for address, params in decode_vmc(data)
                         if address == "/VMC/Ext/T")
            frames.append((float(time_s), vmc_frame_values(data)[SMILE]))  # type: ignore[arg-type]
    return frames


def settled(frames: list[tuple[float, float]]) -> bool:
    """The last STILL_S of frames moved less than STILL (and they span STILL_S)."""
    newest = frames[-1][0]
    recent = [value for t, value in frames if t >= newest - STILL_S]
    return frames[0][0] <= newest - STILL_S and max(recent) - min(recent) < STILL


def rise_time_s(frames: list[tuple[float, float]], start: float, final: float) -> float:
    """Frame-clock seconds from the last frame at ``start`` to the first 63 % of the way to
    ``final``."""
    level = start + RISE * (final - start)
    first = next(i for i, (_, value) in enumerate(frames) if value > start + STILL)
    reached = next(i for i, (_, value) in enumerate(frames) if value >= level)
    return frames[reached][0] - frames[max(first - 1, 0)][0]


def settle(receiver: UdpReceiver) -> float:
    """The smile once it stopped moving."""
    return timed_smiles(receiver, settled)[-1][1]


# --- the tests ----------------------------------------------------------------------------------


def test_happiness_clicked_on_the_page_smiles_on_the_wire_on_the_page_and_in_the_stats(
    browser: Any, bridge: PanelProcess, vmc: UdpReceiver
) -> None:
    """One click is one web input: the VMC output (decoded from UDP) and the page's bar smile,
    a stats line counts it, and the ``-v`` line shows happiness's VAD for ``default``."""
    open_panel(browser, bridge)
    assert smile_bar(browser) < 0.2 and vmc_smile(vmc) < 0.2
    click_emotion(browser, "happiness")
    wait_until(lambda: vmc_smile(vmc) > 0.5, "the VMC output's mouthSmileLeft to rise")
    wait_for(browser, lambda d: smile_bar(d) > 0.5, "the page's smile bar to rise")
    text = bridge.wait_for_log(lambda log: sum(c.get("web", 0) for c in stats_accepted(log)),
                               "a stats line counting the click")
    assert sum(counts.get("web", 0) for counts in stats_accepted(text)) == 1  # one click
    assert "; inputs accepted web=1, rejected 0," in text
    (line,) = accepted_lines(text)
    assert (line.avatar, line.vad, line.since) == ("default", HAPPINESS, 1)


def test_dragging_the_pad_moves_the_vad_in_the_daemon_and_on_the_page(
    browser: Any, bridge: PanelProcess
) -> None:
    """The pad maps x to valence and y to arousal over its box (-1..1, up = aroused). Pressed
    right of and above the centre by a sixth of the pad, dragged on to a third: valence and
    arousal 1/3 at the press, 2/3 at the end, dominance untouched (partial updates).

    Tolerance 0.02: a pixel is 2/240 of an axis, and the pointer may land a pixel off the
    element's (fractional) centre; the page shows 2 decimals (0.005)."""
    from selenium.webdriver.common.action_chains import ActionChains

    open_panel(browser, bridge)
    pad = by_id(browser, "pad")
    width, height = pad.size["width"], pad.size["height"]
    sixth = (round(width / 6), round(height / 6))
    press = (2 * sixth[0] / width, 2 * sixth[1] / height)
    end = (4 * sixth[0] / width, 4 * sixth[1] / height)
    ActionChains(browser).move_to_element_with_offset(pad, sixth[0], -sixth[1]) \
        .click_and_hold().move_by_offset(sixth[0] // 2, -sixth[1] // 2) \
        .move_by_offset(sixth[0] - sixth[0] // 2, -(sixth[1] - sixth[1] // 2)).release().perform()

    # The page: the target dot's readout at the end of the drag, the smoothed VAD following.
    wait_for(browser, lambda d: page_vad(d)[1][:2] == pytest.approx(end, abs=PAD_TOLERANCE),
             "the page's target VAD to follow the drag")
    assert page_vad(browser)[1][2] == 0.0
    wait_for(browser, lambda d: min(page_vad(d)[0][:2]) > 0.5, "the smoothed VAD to follow")

    # The daemon: its first accepted web input is the press (logged at once); a later line
    # (at most one a second) shows where the drag ended: clicks there until it is logged.
    text = bridge.wait_for_log(accepted_lines, "the press")
    first = accepted_lines(text)[0]
    assert first.avatar == "default" and first.since == 1
    assert first.vad[:2] == pytest.approx(press, abs=PAD_TOLERANCE) and first.vad[2] is None

    def at_the_end(line: Accepted) -> bool:
        return line.vad[:2] == pytest.approx(end, abs=PAD_TOLERANCE) and line.vad[2] is None

    def clicked_until_logged(_driver: Any) -> bool:
        ActionChains(browser).move_to_element_with_offset(pad, 2 * sixth[0], -2 * sixth[1]) \
            .click().perform()
        return any(at_the_end(line) for line in accepted_lines(bridge.log_text)[1:])

    wait_for(browser, clicked_until_logged, "an accepted-input line where the drag ended")
    lines = accepted_lines(bridge.log_text)
    assert all(line.avatar == "default" and line.vad[2] is None for line in lines)
    # After the press: the drag's moves (at least one: the page sends the newest every 33 ms)
    # and at least the click of the line where the drag ended.
    assert sum(line.since for line in lines[1:]) >= 2

    # The stats lines count every one of them (the press, the moves, the clicks).
    logged = sum(line.since for line in lines)
    text = bridge.wait_for_log(
        lambda log: sum(c.get("web", 0) for c in stats_accepted(log)) >= logged,
        "the stats lines to count the inputs logged")
    assert sum(counts.get("web", 0) for counts in stats_accepted(text)) >= logged


def test_tau_ms_from_the_page_slows_the_output_and_a_refused_value_says_why(
    browser: Any, bridge: PanelProcess, vmc: UdpReceiver
) -> None:
    """Refused values first: the page shows the config loader's reason, the daemon logs the
    refusal, and nothing changes (the rise measured next is the default smoothing's). Then
    ``tau_ms`` 1000 from the page (the page sends it with attack_ms and release_ms cleared:
    one time constant replaces the pair) is applied, shown and logged, and the VMC output's
    63 % rise time from neutral to happiness grows.

    The default attack is 120 ms: the VAD state is 63 % of the way after 0.12 s and the smile,
    a fixed function of it, takes a fixed fraction of that (about 0.1 s measured). With one
    time constant of 1000 ms every axis moves 8.3 times slower (each leaves neutral: attack),
    so the same smile level takes 8.3 times as long (about 0.73 s measured: a frame of
    quantisation at 60 fps is a sixth of the short rise). Asserted: over 3 times as long, and
    the default rise between 0.02 s and 0.3 s (a refused value that had been applied, as 0
    or as a large tau, would show). Times are the frames' own (``/VMC/Ext/T``), so a loaded
    machine reading them late changes nothing."""
    open_panel(browser, bridge)
    assert by_id(browser, "attack_ms").get_attribute("value") == "120"
    assert by_id(browser, "tau_ms").get_attribute("value") == ""
    for typed, got in (("abc", "'abc'"), ("-5", "-5")):
        tune(browser, "tau_ms", typed)
        wait_for(browser, lambda d: tune_message(d).startswith("refused"), "the refusal")
        assert tune_message(browser) == (
            f"refused: smoothing.tau_ms: expected a number >= 0, got {got}")
        bridge.wait_for_log(f"change refused: smoothing.tau_ms: expected a number >= 0, got {got}")
    assert "config reloaded" not in bridge.log_text
    running = browser.execute_script("return window.vadbridgePanel.state.settings.smoothing")
    assert running == {"attack_ms": 120, "release_ms": 300, "space": "vad", "idle_timeout_s": 0}
    refusals = [line for line in bridge.log_text.splitlines() if "change refused" in line]
    assert len(refusals) == 2 and "smoothing.tau_ms: expected a number >= 0" in refusals[0]

    start = settle(vmc)
    vmc.drain()
    click_emotion(browser, "happiness")
    default = timed_smiles(vmc, settled)
    final = default[-1][1]
    assert final > 0.5
    default_rise_s = rise_time_s(default, start, final)
    assert 0.02 < default_rise_s < 0.3

    click_emotion(browser, "neutral")
    start = settle(vmc)
    assert start < 0.05
    tune(browser, "tau_ms", "1000")
    wait_for(browser, lambda d: tune_message(d) == "applied", "the change to be applied")
    assert [by_id(browser, key).get_attribute("value")
            for key in ("tau_ms", "attack_ms", "release_ms")] == ["1000", "", ""]
    bridge.wait_for_log("config reloaded from control panel: smoothing tau_ms=1000 space=vad")
    vmc.drain()
    click_emotion(browser, "happiness")
    slow = timed_smiles(vmc, lambda frames: frames[-1][1] >= start + RISE * (final - start))
    slow_rise_s = rise_time_s(slow, start, final)
    assert slow_rise_s > 3 * default_rise_s, (default_rise_s, slow_rise_s)


def test_the_page_reconnects_when_the_bridge_restarts(
    browser: Any, bridge: PanelProcess, vmc: UdpReceiver
) -> None:
    """The bridge stops (SIGTERM: it closes the pages' connections "going away") and a new
    process starts on the same ports: the page says so, reconnects by itself and drives it."""
    open_panel(browser, bridge)
    assert bridge.stop() == 0
    wait_for(browser, lambda d: status(d) == "reconnecting…", "the page to notice")
    bridge.start()  # the same ports
    wait_for(browser, lambda d: status(d) == "connected", "a reconnection")
    assert vmc_smile(vmc) < 0.2
    click_emotion(browser, "happiness")
    wait_until(lambda: vmc_smile(vmc) > 0.5, "the restarted bridge's VMC smile to rise")
    wait_for(browser, lambda d: smile_bar(d) > 0.5, "the page's smile bar to rise")
    (line,) = accepted_lines(bridge.wait_for_log(accepted_lines, "the click's input line"))
    assert line.vad == HAPPINESS  # the new process's own log: one input, the click


def test_the_avatar_picker_lists_every_avatar_and_switches_the_face_shown(
    browser: Any, bridge: PanelProcess, vmc: UdpReceiver
) -> None:
    """A second avatar appears when an input addresses it (here OSC, from outside the page);
    the page learns it from the stats updates. The VMC output is bound to ``default``."""
    from selenium.webdriver.support.ui import Select

    open_panel(browser, bridge)
    assert not by_id(browser, "avatar-picker").is_displayed()
    send_osc(bridge.osc_port, osc("/avatar/npc/emotion", "happiness", 1.0))
    wait_for(browser, lambda d: by_id(d, "avatar-picker").is_displayed(), "the picker")
    picker = Select(by_id(browser, "avatar"))
    assert [option.get_attribute("value") for option in picker.options] == ["default", "npc"]
    assert picker.first_selected_option.get_attribute("value") == "default"
    assert smile_bar(browser) < 0.2
    picker.select_by_value("npc")
    wait_for(browser, lambda d: smile_bar(d) > 0.5, "npc's smile on the page")
    assert vmc_smile(vmc) < 0.2  # default's face, on the wire, did not change
    picker.select_by_value("default")
    wait_for(browser, lambda d: smile_bar(d) < 0.2, "default's face again")
    (line,) = accepted_lines(bridge.log_text, "osc")
    assert (line.avatar, line.vad) == ("npc", HAPPINESS)


def inputs_table(driver: Any) -> dict[str, list[str]]:
    """The page's inputs table: source -> [accepted, rejected, clipped] cells as shown."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#inputs tr')].map("
        "(row) => [...row.children].map((cell) => cell.textContent));")
    return {row[0]: row[1:] for row in rows}


def test_the_inputs_table_counts_each_sources_inputs_and_rejections(
    browser: Any, bridge: PanelProcess
) -> None:
    """Per source, "rate in the last interval · total since start": a click is one accepted
    ``web`` input; an OSC message for an emotion nobody knows is one rejected ``osc`` input (its
    kind, ``emotion.unknown``, is shared by every source: only the per-source count says which)."""
    open_panel(browser, bridge)
    click_emotion(browser, "happiness")
    send_osc(bridge.osc_port, osc("/emotion", "euphoria-of-nowhere", 1.0))
    wait_for(browser, lambda d: inputs_table(d).get("osc", ["", ""])[1].endswith(" · 1"),
             "the osc row to count the rejection")
    wait_for(browser, lambda d: inputs_table(d)["web"][0].endswith(" · 1"),
             "the web row to count the click")
    table = inputs_table(browser)
    assert table["osc"][0].endswith(" · 0") and table["web"][1].endswith(" · 0")
    assert re.fullmatch(r"\d+\.\d/s · 1", table["web"][0]), table


def test_the_pages_face_is_drawn_with_the_previews_geometry(
    browser: Any, bridge: PanelProcess
) -> None:
    """face.js is a port of tools/preview_face.py: same numbers, rule for rule."""
    rng = np.random.default_rng(15)
    cases = [np.zeros(52), np.ones(52), *rng.uniform(-0.2, 1.2, (6, 52))]
    open_panel(browser, bridge)
    for weights in cases:
        page = browser.execute_script(
            "return window.vadbridgePanel.faceGeometry(arguments[0], arguments[1])",
            weights.tolist(), list(ARKIT_NAMES))
        assert_same_geometry(page, face_geometry(weights))
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe  # no CSP violation, no script error, nothing missing


def assert_same_geometry(page: dict[str, Any], python: Any) -> None:
    close: dict[str, Any] = {"rtol": 0, "atol": 1e-9}
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
