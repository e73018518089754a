"""The vtube_studio output: the mapping table and requests (pure), then the client against the
stand-in server (tests/vts_server.py; VTube Studio itself cannot run here), then a whole bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import logging
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import bridge_harness
import numpy as np
import pytest
from bridge_harness import config_from_yaml, on_loop, running_bridge
from conftest import free_port
from models import _CLI_WITHOUT_TORCH
from vts_server import MuteListener, VtsServer

from vadbridge import emotion_to_vad, load_model
from vadbridge.benchmarks.harness import median_time_s, percentile
from vadbridge.benchmarks.scenario import RecordingPacer
from vadbridge.commands import main
from vadbridge.config import (
    ConfigError,
    VtsMappingRow,
    VtubeStudioOutputConfig,
    custom_parameter_names,
    format_mapping_row,
    is_vts_parameter_name,
    load_config,
    parse_config,
    parse_mapping_row,
)
from vadbridge.core.types import Frame
from vadbridge.daemon import Bridge
from vadbridge.model.arkit import ARKIT_INDEX, ARKIT_NAMES
from vadbridge.outputs import vtube_studio_client as client_module
from vadbridge.outputs.vtube_studio import (
    DEFAULT_MAPPING,
    DEFAULT_MAPPING_TEXT,
    NUM_INPUTS,
    InjectionTemplate,
    ParameterMap,
    ReplyError,
    authentication_request,
    custom_parameters,
    merge_mapping,
    parameter_creation_request,
    parse_reply,
    token_request,
)
from vadbridge.outputs.vtube_studio_client import VtubeStudioSink, read_token_file
from vadbridge.reload import Reloader
from vadbridge.scheduling import freeze_startup_objects, request_realtime

TIMEOUT_S = 10.0  # only bounds a failing test
FPS = 60
PLUGIN = ("vadbridge", "vadbridge")  # plugin name and developer


# --- the mapping table --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model() -> Any:
    return load_model()[0]


def face(model: Any, emotion: str) -> tuple[np.ndarray, np.ndarray]:
    vad = emotion_to_vad(emotion)
    return model.forward(vad[None].astype(np.float32))[0], vad


TABLE = ParameterMap(DEFAULT_MAPPING)
REST = TABLE.values(np.zeros(52, dtype=np.float32))


def test_the_neutral_face_is_vtube_studios_rest_pose() -> None:
    assert REST["MouthSmile"] == 0.5 and REST["BrowLeftY"] == REST["BrowRightY"] == 0.5
    assert REST["EyeOpenLeft"] == REST["EyeOpenRight"] == 1.0
    assert REST["MouthOpen"] == REST["FaceAngry"] == REST["Brows"] == 0.0


def test_happiness_raises_mouth_smile_and_sadness_lowers_it(model: Any) -> None:
    happy = TABLE.values(*face(model, "happiness"))
    sad = TABLE.values(*face(model, "sadness"))
    assert happy["MouthSmile"] > 0.9 > 0.5 > 0.1 > sad["MouthSmile"]


def test_anger_and_only_anger_shows_face_angry(model: Any) -> None:
    assert TABLE.values(*face(model, "anger"))["FaceAngry"] > 0.9
    for calm_or_other in ("happiness", "sadness", "fear", "surprise"):
        assert TABLE.values(*face(model, calm_or_other))["FaceAngry"] < 0.1, calm_or_other


def test_eye_open_falls_as_eye_blink_rises() -> None:
    opens = []
    for blink in np.linspace(0.0, 1.0, 11):
        weights = np.zeros(52, dtype=np.float32)
        weights[[ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["eyeBlinkRight"]]] = blink
        values = TABLE.values(weights)
        assert values["EyeOpenLeft"] == values["EyeOpenRight"]
        opens.append(values["EyeOpenLeft"])
    assert opens[0] == 1.0 and opens[-1] == 0.0
    assert all(a >= b for a, b in itertools.pairwise(opens))
    assert opens[4] > opens[6]  # strictly falling through the middle


def test_every_value_is_clipped_to_its_parameters_range() -> None:
    rows = merge_mapping([parse_mapping_row("MouthOpen = 5*jawOpen + 3*valence"),
                          parse_mapping_row("MyNewParam = -50 + 200*arousal in [-10, 10]")])
    table = ParameterMap(rows)
    ranges = {row.parameter: (row.low, row.high) for row in rows}
    rng = np.random.default_rng(14)
    for weights in (np.zeros(52), np.ones(52), *rng.random((50, 52))):
        for vad in ((-1, -1, -1), (1, 1, 1), rng.uniform(-1, 1, 3)):
            for parameter, value in table.values(weights, vad).items():
                low, high = ranges[parameter]
                assert low <= value <= high, (parameter, value)
    assert table.values(np.ones(52), (1, 1, 1))["MyNewParam"] == 10.0
    assert table.values(np.zeros(52), (-1, -1, -1))["MyNewParam"] == -10.0


def test_the_built_in_rows_read_back_from_their_own_text() -> None:
    for text, row in zip(DEFAULT_MAPPING_TEXT, DEFAULT_MAPPING, strict=True):
        assert parse_mapping_row(format_mapping_row(row)) == row, text
    assert len({row.parameter for row in DEFAULT_MAPPING}) == len(DEFAULT_MAPPING)


def test_overrides_replace_remove_and_add_rows_keeping_the_order() -> None:
    rows = merge_mapping([parse_mapping_row("MouthOpen = jawOpen"),
                          parse_mapping_row("FaceAngry = off"),
                          parse_mapping_row("ParamSparkle = valence in [0, 1]")])
    ids = [row.parameter for row in rows]
    assert ids == [r.parameter for r in DEFAULT_MAPPING if r.parameter != "FaceAngry"] + [
        "ParamSparkle"]
    assert rows[ids.index("MouthOpen")] == VtsMappingRow("MouthOpen", 0.0, (("jawOpen", 1.0),),
                                                         0.0, 1.0)


BAD_ROWS = {  # row -> what the error says
    "MouthSmile": "the form NAME =",
    "Abc = jawOpen": "not 4-32 letters and digits",
    "MouthSmile = jawOpen + jawOpen": "each input once",
    "MouthSmile = 2*smile": "an input",
    "MouthSmile = 2 jawOpen": "'+' or '-' before",
    "ParamSparkle = jawOpen": "a range 'in [LOW, HIGH]'",
    "MouthSmile = jawOpen in [1, 0]": "LOW < HIGH",
    "MouthSmile = 2e6*jawOpen": "limit of 1e+06",
    "MouthSmile = jawOpen; rm": "unexpected",
}


@pytest.mark.parametrize(("text", "reason"), BAD_ROWS.items())
def test_a_bad_mapping_row_says_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_mapping_row(text)


def test_custom_parameter_names_follow_the_apis_rules() -> None:
    names = custom_parameter_names()
    assert len(names) == len(set(names)) == 55
    assert all(is_vts_parameter_name(name) and name.startswith("vadbridge") for name in names)
    assert names[ARKIT_INDEX["eyeBlinkLeft"]] == "vadbridgeEyeBlinkLeft"
    assert names[-3:] == ("vadbridgeValence", "vadbridgeArousal", "vadbridgeDominance")
    assert all(len(p.explanation) < 256 for p in custom_parameters())


# --- requests and replies ----------------------------------------------------------------------

def envelope(text: str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(text)
    assert message["apiName"] == "VTubeStudioPublicAPI" and message["apiVersion"] == "1.0"
    assert message["requestID"].isascii() and 1 <= len(message["requestID"]) <= 64
    return message


def test_requests_carry_the_documented_envelope_and_fields() -> None:
    token = envelope(token_request("vadbridge", "t-1"))
    assert token["messageType"] == "AuthenticationTokenRequest"
    assert token["data"] == {"pluginName": "vadbridge", "pluginDeveloper": "vadbridge"}
    auth = envelope(authentication_request("vadbridge", "abc", "a-1"))
    assert auth["data"]["authenticationToken"] == "abc"
    create = envelope(parameter_creation_request(custom_parameters()[0], "c-1"))
    assert create["messageType"] == "ParameterCreationRequest"
    assert {k: create["data"][k] for k in ("min", "max", "defaultValue")} == {
        "min": 0.0, "max": 1.0, "defaultValue": 0.0}


def test_the_injection_template_holds_every_id_and_value_in_order() -> None:
    values = np.linspace(0, 1, len(TABLE), dtype=np.float32)
    message = envelope(InjectionTemplate(TABLE.ids).encode(values))
    assert message["messageType"] == "InjectParameterDataRequest"
    data = message["data"]
    assert data["faceFound"] is True and data["mode"] == "set"
    assert [entry["id"] for entry in data["parameterValues"]] == list(TABLE.ids)
    np.testing.assert_allclose([e["value"] for e in data["parameterValues"]], values, atol=1e-4)


def encode_us(parameter_map: ParameterMap) -> float:
    """Median µs per frame of ``apply`` + ``encode``, what the client does per injection."""
    template = InjectionTemplate(parameter_map.ids)
    inputs = np.random.default_rng(0).random(NUM_INPUTS).astype(np.float32)
    out = np.empty(len(parameter_map), dtype=np.float32)

    def frame() -> None:
        parameter_map.apply(inputs, out)
        template.encode(out)

    return median_time_s(frame, 2000) * 1e6


def test_a_frame_costs_one_mapping_and_one_encode_of_a_few_microseconds() -> None:
    default_us = encode_us(TABLE)
    custom = ParameterMap(merge_mapping(client_module.custom_rows(custom_parameters())))
    custom_us = encode_us(custom)
    print(f"\nmapping + encode: {default_us:.1f} us/frame ({len(TABLE)} parameters), "
          f"{custom_us:.1f} us/frame ({len(custom)} with the custom ones)")
    assert default_us < 200 and custom_us < 400  # generous: a loaded CI machine


@pytest.mark.parametrize(("text", "kind"), [
    (b"\xff\xfe", "reply.json"),
    ("{", "reply.json"),
    ('{"apiName": "VTubeStudioPublicAPI", "messageType": "X", "data": {"v": NaN}}', "reply.json"),
    ("[1, 2]", "reply.shape"),
    ('{"messageType": "APIError"}', "reply.shape"),
    ('{"apiName": "VTubeStudioPublicAPI", "messageType": "X", "data": [1]}', "reply.shape"),
    ('{"apiName": "VTubeStudioPublicAPI", "messageType": 5}', "reply.shape"),
    ("[" * 100_000, "reply.json"),
])
def test_unreadable_replies_raise_their_kind(text: str | bytes, kind: str) -> None:
    with pytest.raises(ReplyError) as caught:
        parse_reply(text)
    assert caught.value.kind == kind


def test_replies_tolerate_unknown_fields_and_a_null_data() -> None:
    reply = parse_reply('{"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0", "new": 1, '
                        '"messageType": "APIError", "requestID": "r", '
                        '"data": {"errorID": 453, "message": "m", "extra": true}}')
    assert (reply.error_id, reply.error_message, reply.request_id) == (453, "m", "r")
    assert parse_reply('{"apiName": "VTubeStudioPublicAPI", "messageType": "X", '
                       '"data": null}').data == {}


# --- the client against the stand-in server ----------------------------------------------------

@pytest.fixture
def server() -> Iterator[VtsServer]:
    vts = VtsServer().start()
    yield vts
    vts.close()


def output_config(server_url: str, tmp_path: Path, **settings: Any) -> VtubeStudioOutputConfig:
    return VtubeStudioOutputConfig(url=server_url, token_file=str(tmp_path / "vts.token"),
                                   reconnect_max_s=settings.pop("reconnect_max_s", 1.0),
                                   **settings)


def saved_token(server: VtsServer, tmp_path: Path) -> str:
    """A token the server issued earlier (the user clicked Allow on another day), on disk."""
    token = "vts-earlier-token-0123456789"
    server.issued[token] = PLUGIN
    (tmp_path / "vts.token").write_text(token + "\n")
    return token


async def until(condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


@asynccontextmanager
async def streaming(sink: VtubeStudioSink, fps: float = FPS,
                    weights: np.ndarray | None = None) -> AsyncIterator[Frame]:
    """Run the sink and send it a frame every 1/fps s, as the frame loop would."""
    frame = Frame(np.zeros(52, dtype=np.float32) if weights is None else weights)
    run = asyncio.create_task(sink.run())

    async def frames() -> None:
        while True:
            frame.number += 1
            sink.send(frame)
            await asyncio.sleep(1 / fps)

    feeder = asyncio.create_task(frames())
    try:
        yield frame
    finally:
        feeder.cancel()
        sink.close()
        await asyncio.wait_for(run, TIMEOUT_S)


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


T = TypeVar("T")


def run_logged(caplog: pytest.LogCaptureFixture,
               scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``scenario()`` on a fresh loop, the outputs' INFO lines captured in ``caplog``."""
    with caplog.at_level(logging.INFO, logger="vadbridge.outputs"):
        return asyncio.run(scenario())


def test_the_token_is_asked_for_once_then_granted_and_saved_0600(
    server: VtsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = VtubeStudioSink(output_config(server.url, tmp_path), name="vts", frame_rate=FPS)

    async def scenario() -> str:
        async with streaming(sink):
            await until(lambda: server.pending_token_requests == 1, "the token request")
            await asyncio.sleep(0.3)  # the popup is up; nothing is injected meanwhile
            assert sink.state == "waiting_for_allow" and not server.injections
            token = await asyncio.to_thread(server.allow)
            await until(lambda: len(server.injections) >= 10, "injections")
            assert sink.state == "streaming"
        return token

    token = run_logged(caplog, scenario)
    assert server.token_requests == 1 and server.auth_results == [True]
    token_file = tmp_path / "vts.token"
    assert read_token_file(token_file) == (token, None)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(lines(caplog, "waiting for the user to allow the plugin 'vadbridge'")) == 1
    assert len(lines(caplog, "connected to VTube Studio")) == 1
    first = server.injections[0]
    assert first.face_found and first.mode == "set"
    assert set(first.values) == set(TABLE.ids)


def test_a_saved_token_is_reused_without_asking_the_user(
    server: VtsServer, tmp_path: Path
) -> None:
    saved_token(server, tmp_path)
    sink = VtubeStudioSink(output_config(server.url, tmp_path), name="vts", frame_rate=FPS)

    async def scenario() -> None:
        async with streaming(sink):
            await until(lambda: len(server.injections) >= 5, "injections")

    asyncio.run(scenario())
    assert server.token_requests == 0 and server.auth_results == [True]


def test_a_revoked_token_asks_the_user_again_and_replaces_the_file(
    server: VtsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = saved_token(server, tmp_path)
    sink = VtubeStudioSink(output_config(server.url, tmp_path), name="vts", frame_rate=FPS)

    async def scenario() -> str:
        async with streaming(sink):
            await until(lambda: sink.state == "streaming", "streaming")
            server.revoke()
            await until(lambda: server.pending_token_requests == 1, "a new token request")
            new = await asyncio.to_thread(server.allow)
            count = len(server.injections)
            await until(lambda: len(server.injections) > count + 5, "injections again")
        return new

    new = run_logged(caplog, scenario)
    assert new != old and read_token_file(tmp_path / "vts.token") == (new, None)
    assert len(lines(caplog, "VTube Studio revoked the plugin's access")) == 1
    assert len(lines(caplog, "refused the saved token")) == 1
    assert len(lines(caplog, "waiting for the user to allow")) == 1


def test_a_denied_plugin_is_asked_again_later_not_at_once(
    server: VtsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "DENIED_RETRY_S", 0.5)
    sink = VtubeStudioSink(output_config(server.url, tmp_path), name="vts", frame_rate=FPS)

    async def scenario() -> None:
        async with streaming(sink):
            await until(lambda: server.pending_token_requests == 1, "the token request")
            await asyncio.to_thread(server.deny)
            await until(lambda: sink.state == "denied", "denied")
            await asyncio.sleep(0.2)
            assert server.token_requests == 1  # no popup storm
            await until(lambda: server.pending_token_requests == 1, "the next request")
            await asyncio.to_thread(server.allow)
            await until(lambda: sink.state == "streaming", "streaming")

    run_logged(caplog, scenario)
    assert server.token_requests == 2
    assert len(lines(caplog, "the user denied the plugin 'vadbridge'")) == 1


def test_the_token_never_reaches_the_log_even_when_the_server_echoes_it(
    server: VtsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = VtubeStudioSink(output_config(server.url, tmp_path), name="vts", frame_rate=FPS)
    tokens: list[str] = []

    async def scenario() -> None:
        async with streaming(sink):
            await until(lambda: server.pending_token_requests == 1, "the token request")
            tokens.append(await asyncio.to_thread(server.allow))
            await until(lambda: sink.state == "streaming", "streaming")
            echo = {"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0",
                    "requestID": "vadbridge-inject", "messageType": "APIError",
                    "data": {"errorID": 0, "message": f"bad token {tokens[0]}"}}
            await asyncio.to_thread(server.send_raw, json.dumps(echo))
            await until(lambda: "api_error.0" in sink.reply_errors, "the error counted")
            server.revoke()  # refused token, new request: every token path logs something
            await until(lambda: server.pending_token_requests == 1, "a new request")
            tokens.append(await asyncio.to_thread(server.allow))
            await until(lambda: sink.state == "streaming", "streaming again")

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
    logged = caplog.text + repr(sink) + "".join(map(str, caplog.records))
    assert "bad token <token>" in caplog.text
    for token in tokens:
        assert token not in logged


def test_a_saved_token_never_reaches_the_log_either(
    server: VtsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The token read from the file, not only one the bridge asked for, is redacted."""
    token = saved_token(server, tmp_path)
    sink = VtubeStudioSink(output_config(server.url, tmp_path), name="vts", frame_rate=FPS)

    async def scenario() -> None:
        async with streaming(sink):
            await until(lambda: sink.state == "streaming", "streaming")
            echo = {"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0",
                    "requestID": "vadbridge-inject", "messageType": "APIError",
                    "data": {"errorID": 0, "message": f"bad token {token}"}}
            await asyncio.to_thread(server.send_raw, json.dumps(echo))
            await until(lambda: "api_error.0" in sink.reply_errors, "the error counted")

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
    assert "bad token <token>" in caplog.text
    assert token not in caplog.text + repr(sink) + "".join(map(str, caplog.records))


def test_hostile_replies_are_counted_and_logged_once_per_kind(
    server: VtsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    saved_token(server, tmp_path)
    sink = VtubeStudioSink(output_config(server.url, tmp_path), name="vts", frame_rate=FPS)
    hostile = {
        "reply.json": "{not json",
        "reply.shape": '["a", "list"]',
        "reply.unexpected": json.dumps({"apiName": "VTubeStudioPublicAPI", "requestID": "x",
                                        "messageType": "ModelLoadedEvent", "data": {}}),
        "reply.binary": b"\x00\x01",
        "api_error.453": json.dumps({"apiName": "VTubeStudioPublicAPI",
                                     "requestID": "vadbridge-inject", "messageType": "APIError",
                                     "data": {"errorID": 453, "message": "\nnot\x1bfound"}}),
    }

    async def scenario() -> None:
        async with streaming(sink):
            await until(lambda: sink.state == "streaming", "streaming")
            for _ in range(3):
                for data in hostile.values():
                    await asyncio.to_thread(server.send_raw, data)
            await until(lambda: all(sink.reply_errors.get(k) == 3 for k in hostile), "counts")
            assert sink.state == "streaming"  # none of these ends the connection
            connections = server.connections
            await asyncio.to_thread(server.send_raw, "x" * (client_module.MAX_REPLY_BYTES + 1))
            await until(lambda: server.connections > connections, "a reconnection")
            count = len(server.injections)
            await until(lambda: len(server.injections) > count + 5, "injections again")

    run_logged(caplog, scenario)
    assert sink.reply_errors["reply.oversize"] == 1
    assert sink.send_errors >= 3 * len(hostile) + 1
    for kind in (*hostile, "reply.oversize"):
        assert len(lines(caplog, f"({kind})")) == 1, kind
    assert all("\n" not in r.getMessage() and "\x1b" not in r.getMessage()
               for r in caplog.records)


def test_custom_parameters_are_created_and_injected_except_refused_ones(
    server: VtsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    saved_token(server, tmp_path)
    server.refuse_parameters = {"vadbridgeTongueOut"}
    config = output_config(server.url, tmp_path, custom_parameters=True)
    weights = np.full(52, 0.25, dtype=np.float32)
    sink = VtubeStudioSink(config, name="vts", frame_rate=FPS)

    async def scenario() -> None:
        async with streaming(sink, weights=weights):
            await until(lambda: len(server.injections) >= 5, "injections")

    run_logged(caplog, scenario)
    assert set(server.created) == set(custom_parameter_names()) - {"vadbridgeTongueOut"}
    assert server.created["vadbridgeValence"]["min"] == -1.0
    values = server.injections[-1].values
    assert values["vadbridgeEyeBlinkLeft"] == 0.25 and values["vadbridgeValence"] == 0.0
    assert "vadbridgeTongueOut" not in values and "MouthSmile" in values
    assert len(lines(caplog, "refused 1 of 55 custom parameters")) == 1


def test_injections_follow_rate_hz_and_never_pause_a_second(
    server: VtsServer, tmp_path: Path
) -> None:
    saved_token(server, tmp_path)
    limited = VtubeStudioSink(output_config(server.url, tmp_path, rate_hz=10.0), name="vts",
                              frame_rate=FPS)

    async def scenario() -> None:
        async with streaming(limited):
            await until(lambda: limited.state == "streaming", "streaming")
            start = len(server.injections)
            await asyncio.sleep(2.0)
            assert 16 <= len(server.injections) - start <= 22  # 10 per second
        async with streaming(quiet, fps=0.2):  # one frame, then nothing for 5 s
            await until(lambda: quiet.state == "streaming", "streaming")
            start = len(server.injections)
            await asyncio.sleep(2.0)
            times = [i.time_s for i in server.injections[start:]]
            assert len(times) >= 3 and max(np.diff(times)) < 0.8  # kept alive

    quiet = VtubeStudioSink(output_config(server.url, tmp_path), name="vts2", frame_rate=FPS)
    asyncio.run(scenario())


def test_closing_injects_the_pending_frame_then_returns(server: VtsServer, tmp_path: Path
                                                        ) -> None:
    saved_token(server, tmp_path)
    sink = VtubeStudioSink(output_config(server.url, tmp_path), name="vts", frame_rate=FPS)
    smile = np.zeros(52, dtype=np.float32)
    smile[[ARKIT_INDEX["mouthSmileLeft"], ARKIT_INDEX["mouthSmileRight"]]] = 1.0

    async def scenario() -> None:
        run = asyncio.create_task(sink.run())
        sink.send(Frame(smile))
        await until(lambda: len(server.injections) >= 1, "the first injection")
        sink.send(Frame(np.zeros(52, dtype=np.float32)))  # the daemon's neutral frame
        sink.close()
        await asyncio.wait_for(run, TIMEOUT_S)
        # The server's thread may not have read the last one yet when run() returns.
        await until(lambda: len(server.injections) == sink.frames_injected,
                    "the server to read every injection")

    asyncio.run(scenario())
    assert server.injections[0].values["MouthSmile"] == 1.0
    assert server.injections[-1].values["MouthSmile"] == 0.5
    assert sink.state == "closed"


def test_closed_vtube_studio_is_logged_once_and_retried_within_the_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    server = VtsServer(port=port, auto_allow=True)
    sink = VtubeStudioSink(output_config(f"ws://127.0.0.1:{port}", tmp_path,
                                         reconnect_max_s=0.5), name="vts", frame_rate=FPS)

    async def scenario() -> float:
        async with streaming(sink):
            await until(lambda: sink.state == "unreachable", "unreachable")
            await asyncio.sleep(2.0)
            assert sink.send_errors >= 4  # retried, at most 0.5 s apart after the first few
            await asyncio.to_thread(server.start)
            return await until(lambda: len(server.injections) > 0, "injections")

    try:
        waited_s = run_logged(caplog, scenario)
    finally:
        server.close()
    assert waited_s < 0.5 + 1.0  # the cap, plus a second for a loaded machine
    assert len(lines(caplog, f"VTube Studio not running at ws://127.0.0.1:{port}")) == 1
    assert "Start API (allow plugins)" in lines(caplog, "not running")[0]


def test_a_server_that_stops_answering_is_dropped_and_retried(
    server: VtsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "REPLY_TIMEOUT_S", 0.5)
    saved_token(server, tmp_path)
    sink = VtubeStudioSink(output_config(server.url, tmp_path), name="vts", frame_rate=FPS)

    async def scenario() -> None:
        async with streaming(sink):
            await until(lambda: sink.state == "streaming", "streaming")
            server.silent = True
            await until(lambda: sink.state == "stalled", "stalled")
            server.silent = False
            await until(lambda: sink.state == "streaming", "streaming again")

    run_logged(caplog, scenario)
    assert len(lines(caplog, "stopped answering")) == 1


def test_a_listener_that_never_answers_the_upgrade_counts_as_not_running_and_is_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Something accepts the TCP connection and never answers the WebSocket upgrade (a hung
    program, or another program on the port): each attempt ends after CONNECT_TIMEOUT_S as
    "not running" (one log line, each failure counted), the next comes after the backoff, and
    VTube Studio starting on that port later is found."""
    monkeypatch.setattr(client_module, "CONNECT_TIMEOUT_S", 0.3)
    mute = MuteListener().start()
    port = mute.port
    server = VtsServer(port=port)
    saved_token(server, tmp_path)
    sink = VtubeStudioSink(output_config(mute.url, tmp_path, reconnect_max_s=0.5), name="vts",
                           frame_rate=FPS)

    async def scenario() -> float:
        async with streaming(sink):
            await until(lambda: len(mute.accepted) >= 3, "three connection attempts")
            assert sink.state == "unreachable"
            assert sink.connections == 0 and sink.frames_injected == 0
            assert sink.send_errors >= 2  # the first two attempts ended, counted
            gaps = np.diff(mute.accepted[:3])
            # The timeout, then the backoff (0.25 s, then the cap 0.5 s); a second for a loaded
            # machine. At least the timeout: an attempt is not cut short, nor retried at once.
            assert all(0.3 <= gap < 0.3 + 0.5 + 1.0 for gap in gaps), gaps
            await asyncio.to_thread(mute.close)
            await asyncio.to_thread(server.start)
            return await until(lambda: len(server.injections) > 0, "injections")

    try:
        waited_s = run_logged(caplog, scenario)
    finally:
        mute.close()
        server.close()
    assert waited_s < 0.3 + 0.5 + 1.0
    (line,) = lines(caplog, f"VTube Studio not running at ws://127.0.0.1:{port}")
    assert "no answer to the connection or the WebSocket upgrade within 0.3 s" in line
    assert server.auth_results == [True]


def test_a_server_that_never_answers_authentication_is_dropped_and_retried(
    server: VtsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The WebSocket opens but the authentication request gets no reply: after REPLY_TIMEOUT_S
    the connection is dropped (one log line, each counted) and tried again with the backoff."""
    monkeypatch.setattr(client_module, "REPLY_TIMEOUT_S", 0.3)
    saved_token(server, tmp_path)
    server.silent = True
    sink = VtubeStudioSink(output_config(server.url, tmp_path, reconnect_max_s=0.5), name="vts",
                           frame_rate=FPS)

    async def scenario() -> None:
        async with streaming(sink):
            await until(lambda: server.connections >= 3, "three connections")
            assert sink.state == "stalled" and sink.frames_injected == 0
            assert sink.send_errors >= 2
            server.silent = False
            await until(lambda: len(server.injections) > 0, "injections")

    run_logged(caplog, scenario)
    assert len(lines(caplog, "did not answer the auth request within 0.3 s")) == 1
    assert server.auth_results[-1] is True and sink.connections >= 3


def test_an_unwritable_token_file_keeps_the_token_for_the_run(
    server: VtsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    config = VtubeStudioOutputConfig(url=server.url, token_file=str(folder / "vts.token"))
    folder.chmod(0o500)
    server.auto_allow = True
    sink = VtubeStudioSink(config, name="vts", frame_rate=FPS)

    async def scenario() -> None:
        async with streaming(sink):
            await until(lambda: len(server.injections) >= 3, "injections")

    try:
        run_logged(caplog, scenario)
    finally:
        folder.chmod(0o700)
    if os.geteuid() != 0:  # root writes anyway
        assert len(lines(caplog, "cannot write the token file")) == 1
    assert not list(folder.glob(".*.tmp"))


# --- a whole bridge -----------------------------------------------------------------------------

def bridge_config(server_url: str, tmp_path: Path, extra: str = "") -> Any:
    return config_from_yaml(
        f"frame_rate: {FPS}\ninputs: []\n"
        f"outputs:\n  - type: vtube_studio\n    url: {server_url}\n"
        f"    token_file: {tmp_path / 'vts.token'}\n    reconnect_max_s: 1\n{extra}")


@pytest.fixture
def recording_pacer(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingPacer]]:
    """Bridges built by ``running_bridge`` record each frame's lateness."""
    pacers: list[RecordingPacer] = []
    build = bridge_harness.build_bridge

    def build_recording(config: Any) -> Bridge:
        bridge = build(config)
        bridge.pacer = RecordingPacer(bridge.pacer.period_s)
        pacers.append(bridge.pacer)
        return bridge

    monkeypatch.setattr(bridge_harness, "build_bridge", build_recording)
    yield pacers


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> float:
    return bridge_harness.wait_until(condition, what, timeout_s=timeout_s)


def injected_over_frames(
    bridge: Bridge, sink: VtubeStudioSink, server: VtsServer, window_frames: int
) -> tuple[int, int]:
    """(frames the bridge made, frames the client injected) over a window of at least
    ``window_frames`` of the bridge's own frames, both counted on the bridge's loop. The window is
    measured in frames, not seconds, so a loaded machine that makes the bridge skip frames makes
    the window longer instead of failing the count. Returns once every injection of the window
    has reached the server too."""
    counts: list[tuple[int, int, int]] = []

    def count() -> None:
        counts.append((bridge.stats_snapshot()["frames"], sink.frames_injected,
                       len(server.injections)))

    on_loop(bridge, count)
    frames_0, injected_0, received_0 = counts[0]
    while True:
        time.sleep(0.1)
        on_loop(bridge, count)
        if counts[-1][0] - frames_0 >= window_frames:
            break
        assert len(counts) < 10 * TIMEOUT_S, "the bridge stopped making frames"
    frames, injected = counts[-1][0] - frames_0, counts[-1][1] - injected_0
    wait_for(lambda: len(server.injections) - received_0 >= injected, "the server to read")
    return frames, injected


def test_the_bridge_injects_at_least_55_of_60_frames_per_second(
    server: VtsServer, tmp_path: Path
) -> None:
    """The bridge sends 60 frames a second and the client injects each (rate_hz 60 = the frame
    rate: no limiter). A frame is lost only when two arrive before the client's task runs (it
    keeps the newest), which a machine running two test workers does now and then; 55 of 60
    allows 8 % of that while still failing a client that halves or throttles the rate.

    Counted on the bridge's loop, injections against the frames the bridge made in the same
    window: the stand-in server shares this process's interpreter, so its receive times lag
    under load and a count by its clock loses whatever straddles the window's end (50 of 60 in
    one CI run). The window is two seconds of the bridge's frames, not of the wall clock: under
    load the bridge itself skips frames (100 in 2 s in one CI run), which is the frame loop's
    business and measured by its own tests and benchmarks, not this client's."""
    saved_token(server, tmp_path)
    with running_bridge(bridge_config(server.url, tmp_path)) as bridge:
        sink = bridge.sinks[0]
        assert isinstance(sink, VtubeStudioSink)
        wait_for(lambda: sink.state == "streaming", "streaming")
        frames, injected = injected_over_frames(bridge, sink, server, 2 * FPS)
    print(f"\ninjected {injected} of {frames} frames")
    assert injected >= frames * 55 / 60


def test_the_bridge_survives_a_vtube_studio_restart(server: VtsServer, tmp_path: Path) -> None:
    saved_token(server, tmp_path)
    with running_bridge(bridge_config(server.url, tmp_path)) as bridge:
        sink = bridge.sinks[0]
        assert isinstance(sink, VtubeStudioSink)
        wait_for(lambda: sink.state == "streaming", "streaming")
        server.stop()
        wait_for(lambda: sink.state in ("lost", "unreachable"), "the loss noticed")
        time.sleep(1.5)  # VTube Studio restarting
        server.start()
        count = len(server.injections)
        reconnect_s = wait_for(lambda: len(server.injections) > count, "injections again")
        frames, injected = injected_over_frames(bridge, sink, server, FPS)
    print(f"\nreconnected {reconnect_s:.2f} s after the restart, then injected {injected} of "
          f"{frames} frames")
    assert reconnect_s < 1.0 + 1.0  # reconnect_max_s, plus a second for a loaded machine
    assert injected >= frames * 55 / 60  # back to every frame, as before the restart


@contextmanager
def server_process(*options: str) -> Iterator[int]:
    """The stand-in server in a process of its own (as VTube Studio is): its port."""
    with subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("vts_server.py")), *options],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        try:
            yield int(process.stdout.readline())
        finally:
            process.stdin.close()  # the server's signal to stop
            try:
                process.wait(TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def as_vadbridge_run_starts() -> Iterator[None]:
    """What ``vadbridge run`` does before its frame loop: the objects made so far (here, the
    whole test session's) out of the garbage collector's scans; undone afterwards."""
    freeze_startup_objects()
    try:
        yield
    finally:
        gc.unfreeze()


WINDOW_S = 2.0  # one lateness measurement: 120 frames at 60 fps
MAX_WINDOWS = 5


@pytest.mark.parametrize("trouble", ["down", "mute", "replies_late", "silent"])
def test_the_frame_loop_keeps_time_while_vtube_studio_is_down_slow_or_silent(
    tmp_path: Path, recording_pacer: list[RecordingPacer], monkeypatch: pytest.MonkeyPatch,
    trouble: str
) -> None:
    """Lateness p99 under 2 ms (the pacing benchmark's target) while the client retries a
    closed port, or a port that accepts and never answers the WebSocket upgrade (attempts
    timed out after 0.5 s here), waits on replies 200 ms late, or on a server that never
    answers (the authentication request, then everything, unanswered). The server runs in its
    own process, as VTube Studio does.

    The frame loop shares this machine with the other test worker, whose bursts make a few
    frames late in any window, with or without this output (a window under a heavy test can
    reach a median of 1 ms). So the lateness is measured over 2 s windows until one has a p99
    under 2 ms and a median under 0.5 ms (at most 5 windows): a client that held the event loop
    on its retries, waits or replies would be late in every window."""
    token = "vts-earlier-token-0123456789"
    (tmp_path / "vts.token").write_text(token)
    options = {"down": (), "mute": ("--mute",), "replies_late": ("--reply-delay-s", "0.2"),
               "silent": ("--silent",)}[trouble]
    monkeypatch.setattr(client_module, "CONNECT_TIMEOUT_S", 0.5)
    windows: list[tuple[float, float, int]] = []  # (p99 ms, median ms, frames)

    def on_time(window: tuple[float, float, int]) -> bool:
        return window[0] < 2.0 and window[1] < 0.5

    with contextlib.ExitStack() as stack:
        port = free_port() if trouble == "down" else stack.enter_context(
            server_process("--token", token, *options))
        stack.enter_context(as_vadbridge_run_starts())
        with running_bridge(bridge_config(f"ws://127.0.0.1:{port}", tmp_path)) as bridge:
            sink = bridge.sinks[0]
            assert isinstance(sink, VtubeStudioSink)
            pacer = recording_pacer[0]
            realtime: list[bool] = []
            on_loop(bridge, lambda: realtime.append(request_realtime()))
            time.sleep(0.5)
            while len(windows) < MAX_WINDOWS and not (windows and on_time(windows[-1])):
                start = len(pacer.lateness_s)
                time.sleep(WINDOW_S)
                lateness = pacer.lateness_s[start:]
                windows.append((percentile(lateness, 99) * 1e3,
                                percentile(lateness, 50) * 1e3, len(lateness)))
            state, injected = sink.state, sink.frames_injected
    shown = ", ".join(f"p99 {p99:.3f} ms (median {p50:.3f})" for p99, p50, _ in windows)
    print(f"\n{trouble}: client {state}, {injected} injected, SCHED_FIFO {realtime}; lateness "
          f"per {WINDOW_S:g} s: {shown}")
    assert all(frames >= WINDOW_S * FPS * 0.9 for _, _, frames in windows), shown
    assert on_time(windows[-1]), shown
    assert state in {"down": ("unreachable",), "mute": ("unreachable",),
                     "replies_late": ("streaming",), "silent": ("starting", "stalled")}[trouble]


def test_a_reload_keeps_an_unchanged_output_connected_and_replaces_a_changed_one(
    server: VtsServer, tmp_path: Path
) -> None:
    saved_token(server, tmp_path)
    path = tmp_path / "bridge.yaml"
    text = (f"frame_rate: {FPS}\ninputs: []\noutputs:\n  - type: vtube_studio\n"
            f"    url: {server.url}\n    token_file: vts.token\n")
    path.write_text(text)
    config = load_config(path)
    with running_bridge(config) as bridge:
        sink = bridge.sinks[0]
        assert isinstance(sink, VtubeStudioSink)
        wait_for(lambda: sink.state == "streaming", "streaming")
        reloader = Reloader(bridge, path, config)
        path.write_text(text + "stats_interval_s: 5\n")
        on_loop(bridge, reloader.request)
        wait_for(lambda: reloader.reloads == 1, "the first reload")
        assert bridge.sinks == [sink] and sink.connections == 1 and sink.state == "streaming"
        path.write_text(text + "    rate_hz: 30\n")
        on_loop(bridge, reloader.request)
        wait_for(lambda: reloader.reloads == 2, "the second reload")
        (new_sink,) = bridge.sinks
        assert isinstance(new_sink, VtubeStudioSink) and new_sink is not sink
        wait_for(lambda: sink.state == "closed" and new_sink.state == "streaming",
                 "the old output closed, the new one streaming")
        assert new_sink.rate_hz == 30.0 and server.connections == 2


def test_check_says_whether_vtube_studio_listens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # all --check looks for: a TCP listener
    url = f"ws://127.0.0.1:{listener.getsockname()[1]}"
    path = tmp_path / "bridge.yaml"
    path.write_text(f"inputs: []\noutputs:\n  - type: vtube_studio\n    url: {url}\n")
    with listener:
        assert main(["run", "--config", str(path), "--check"]) == 0
        assert f"vtube_studio {url}: port open" in capsys.readouterr().out
    start = time.monotonic()
    assert main(["run", "--config", str(path), "--check"]) == 0
    assert time.monotonic() - start < 5.0  # at most a second's connect, plus loading the model
    out = capsys.readouterr().out
    assert f"vtube_studio {url}: nothing listens there" in out
    assert "Start API (allow plugins)" in out


# --- config ------------------------------------------------------------------------------------

def test_the_output_reads_all_its_keys(tmp_path: Path) -> None:
    config = parse_config(
        "outputs:\n"
        "  - type: vtube_studio\n    url: ws://localhost:8002\n    avatar: bob\n"
        "    token_file: my.token\n    plugin_name: My Face\n    custom_parameters: true\n"
        "    rate_hz: 30\n    reconnect_max_s: 2\n"
        "    mapping: ['MouthOpen = 1.5*jawOpen', 'FaceAngry = off']\n",
        str(tmp_path / "c.yaml"))
    (output,) = config.outputs
    assert output == VtubeStudioOutputConfig(
        url="ws://localhost:8002", avatar="bob", token_file=str(tmp_path / "my.token"),
        plugin_name="My Face", custom_parameters=True, rate_hz=30.0, reconnect_max_s=2.0,
        mapping=(parse_mapping_row("MouthOpen = 1.5*jawOpen"), VtsMappingRow("FaceAngry",
                                                                            enabled=False)))


def test_the_token_file_defaults_to_beside_the_config(tmp_path: Path) -> None:
    config = parse_config("outputs: [{type: vtube_studio}]", str(tmp_path / "c.yaml"))
    assert config.outputs[0].token_file == str(tmp_path / "vtube-studio.token")
    assert config.outputs[0].url == "ws://127.0.0.1:8001"


BAD_SETTINGS = {  # the entry's line -> (its key path, what the error expects)
    "url: http://127.0.0.1:8001": ("outputs[0].url", "a WebSocket URL ws://HOST:PORT"),
    "url: ws://127.0.0.1": ("outputs[0].url", "a WebSocket URL"),
    "url: ws://127.0.0.1:70000": ("outputs[0].url", "a WebSocket URL"),
    "rate_hz: 61": ("outputs[0].rate_hz", "a number 1..60"),
    "plugin_name: ab": ("outputs[0].plugin_name", "3-32 printable characters"),
    "token_file: /no/such/dir/t": ("outputs[0].token_file", "in an existing directory"),
    "token_file: c.yaml": ("outputs[0].token_file", "a token file other than the config file"),
    "mapping: ['MouthSmile = smile']": ("outputs[0].mapping[0]", "a mapping row"),
    "mapping: ['MouthOpen = jawOpen', 'MouthOpen = off']": ("outputs[0].mapping[1]",
                                                            "each parameter once"),
    "custom_parameters: true\n    mapping: ['vadbridgeJawOpen = jawOpen in [0, 1]']": (
        "outputs[0].mapping[0]", "a parameter other than the custom parameters"),
}


@pytest.mark.parametrize(("entry", "key_path", "expected"),
                         [(entry, *rest) for entry, rest in BAD_SETTINGS.items()],
                         ids=[entry.split(":")[0] for entry in BAD_SETTINGS])
def test_a_bad_setting_is_one_line_naming_file_line_and_key(
    tmp_path: Path, entry: str, key_path: str, expected: str
) -> None:
    path = tmp_path / "c.yaml"
    text = f"outputs:\n  - type: vtube_studio\n    {entry}\n"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, str(path))
    error = caught.value
    assert (error.key_path, error.line) == (key_path, 3 + entry.count("\n"))
    assert expected in str(error) and "\n" not in str(error)


def test_without_aiohttp_the_config_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "aiohttp" else real(name, *a))
    with pytest.raises(ConfigError) as caught:
        parse_config("outputs:\n  - type: vtube_studio\n", "c.yaml")
    assert str(caught.value) == (
        "c.yaml:2: outputs[0].type: expected the aiohttp package (pip install "
        "'vadbridge[web]'), got it is not installed")
    parse_config("outputs:\n  - type: vmc\n", "c.yaml")  # other outputs do not need it


def test_arkit_names_are_the_mapping_inputs() -> None:
    assert [row for row in DEFAULT_MAPPING
            if any(name not in ARKIT_NAMES for name, _ in row.terms)] == []


# The vadbridge CLI with every import of aiohttp failing, as in a base install without [web].
_CLI_WITHOUT_AIOHTTP = _CLI_WITHOUT_TORCH.replace("torch", "aiohttp").replace("Torch", "Aiohttp")


def run_cli_without_aiohttp(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _CLI_WITHOUT_AIOHTTP, *argv],
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_base_install_without_aiohttp_runs_other_outputs_and_names_the_extra(
    tmp_path: Path
) -> None:
    other = tmp_path / "vmc.yaml"
    other.write_text("inputs: []\noutputs: [{type: vmc}]\n")
    checked = run_cli_without_aiohttp(["run", "--check", "--config", str(other)])
    assert checked.returncode == 0, checked.stderr
    wanted = tmp_path / "vts.yaml"
    wanted.write_text("inputs: []\noutputs:\n  - type: vtube_studio\n")
    refused = run_cli_without_aiohttp(["run", "--check", "--config", str(wanted)])
    assert refused.returncode == 2
    (line,) = refused.stderr.splitlines()
    assert f"{wanted}:3: outputs[0].type:" in line
    assert "pip install 'vadbridge[web]'" in line
