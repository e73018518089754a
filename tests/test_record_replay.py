"""RecordSink (Live Link Face CSV) and ``vadbridge replay`` over real files and UDP sockets."""

from __future__ import annotations

import argparse
import csv
import io
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO, cast

import numpy as np
import pytest
from livelink_decoder import decode_livelink

from vadbridge.commands import main as cli_main
from vadbridge.core.osc_codec import decode_packet
from vadbridge.core.types import Frame
from vadbridge.model.arkit import ARKIT_NAMES, upper_camel
from vadbridge.outputs.record import (
    CSV_COLUMNS,
    RecordSink,
    csv_header,
    format_row,
    format_timecode,
)
from vadbridge.tools import replay as replay_module
from vadbridge.tools.replay import Take, TakeError, load_take, parse_timecode, replay

# The header row of a real Live Link Face capture (alexdjulin/LiveLinkFace-CSV-Retarget-For-
# Motionbuilder, anim/S07-001.csv). Note JawRight before JawLeft and MouthRight before MouthLeft.
APP_HEADER = (
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,"
    "EyeLookUpLeft,EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,"
    "EyeLookOutRight,EyeLookUpRight,EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,"
    "JawOpen,MouthClose,MouthFunnel,MouthPucker,MouthRight,MouthLeft,MouthSmileLeft,"
    "MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,MouthDimpleRight,"
    "MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
    "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,"
    "MouthUpperUpLeft,MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,"
    "BrowOuterUpRight,CheekPuff,CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,"
    "TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,"
    "RightEyePitch,RightEyeRoll"
)
HEAD_EYE = APP_HEADER.split(",")[-9:]
FLOAT32_RTOL = 2.0**-23  # half an ulp relative, plus the CSV's 10-decimal rounding below
CSV_ATOL = 1e-10


def weights_of(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(52, dtype=np.float32)


def parse_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


class FakeClock:
    """time.monotonic/time.sleep stand-ins: sleeping advances the clock exactly."""

    def __init__(self, start_s: float = 100.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now_s += seconds


class Recorder:
    """A sink that notes (clock time, frame number, time_s, weights) of every send."""

    def __init__(self, clock: FakeClock, cost_s: float = 0.0) -> None:
        self.clock = clock
        self.cost_s = cost_s
        self.sent: list[tuple[float, int, float, np.ndarray]] = []

    def send(self, frame: Frame) -> None:
        self.sent.append((self.clock(), frame.number, frame.time_s, frame.weights.copy()))
        self.clock.now_s += self.cost_s  # a slow receiver path


# --- the CSV layout ---------------------------------------------------------------------------


def test_header_is_the_live_link_face_apps_header_byte_for_byte() -> None:
    assert csv_header() == APP_HEADER
    assert len(CSV_COLUMNS) == 63


@pytest.mark.parametrize(
    ("seconds", "fps", "expected"),
    [
        (0.0, 60, "00:00:00:00.000"),
        (12 * 3600 + 27 * 60 + 47 + 47.169 / 60, 60, "12:27:47:47.169"),  # a real app row
        (3.5, 60, "00:00:03:30.000"),
        (59 * 60 + 59 + 59.5 / 60, 60, "00:59:59:59.500"),
        (1.0 - 1e-7, 60, "00:00:01:00.000"),  # a fraction that rounds to 1.000 carries
        (86400 + 1.5, 60, "00:00:01:30.000"),  # wraps at midnight
        (10.25, 30, "00:00:10:07.500"),
    ],
)
def test_format_timecode_writes_frames_and_thousandths_of_a_frame(
    seconds: float, fps: int, expected: str
) -> None:
    assert format_timecode(seconds, fps) == expected


@pytest.mark.parametrize(("seconds", "fps"), [(-1.0, 60), (float("nan"), 60), (1.0, 0)])
def test_format_timecode_rejects_bad_input(seconds: float, fps: int) -> None:
    with pytest.raises(ValueError):
        format_timecode(seconds, fps)


def test_format_row_places_each_value_under_its_name() -> None:
    weights = (np.arange(52, dtype=np.float32) + 1) / 64  # exact in float32 and in decimal
    (row,) = parse_rows(csv_header() + "\n" + format_row(weights, 7.5))
    assert row["Timecode"] == "00:00:07:30.000"
    assert row["BlendShapeCount"] == "61"
    for index, name in enumerate(ARKIT_NAMES):
        assert float(row[upper_camel(name)]) == float(weights[index]), name
    assert float(row["JawLeft"]) == float(weights[ARKIT_NAMES.index("jawLeft")])
    assert float(row["MouthRight"]) == float(weights[ARKIT_NAMES.index("mouthRight")])
    assert [row[name] for name in HEAD_EYE] == ["0.0000000000"] * 9


def test_format_row_rejects_a_wrong_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        format_row(np.zeros(51, dtype=np.float32), 0.0)


# --- RecordSink -------------------------------------------------------------------------------


def test_record_sink_writes_one_row_per_frame_timed_from_the_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "take.csv"
    sink = RecordSink(path, avatar="a", name="rec", time_of_day=lambda: 3600.5)
    frames = [weights_of(i) for i in range(3)]
    for number, weights in enumerate(frames):
        sink.send(Frame(weights, number, 0.5 + number / 60))
    sink.close()
    rows = parse_rows(path.read_text())
    assert [row["Timecode"] for row in rows] == [
        "01:00:00:30.000",
        "01:00:00:31.000",
        "01:00:00:32.000",
    ]
    assert sink.frames_written == 3 and sink.send_errors == 0
    for row, weights in zip(rows, frames, strict=True):
        got = [float(row[upper_camel(name)]) for name in ARKIT_NAMES]
        np.testing.assert_allclose(got, weights, rtol=0, atol=CSV_ATOL)


class SignallingFile:
    """A real text file whose ``flush`` signals ``flushed`` once the data is on disk."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("w", encoding="utf-8", newline="")
        self.flushed = threading.Event()

    def write(self, text: str) -> int:
        return self.file.write(text)

    def flush(self) -> None:
        self.file.flush()
        self.flushed.set()

    def close(self) -> None:
        self.file.close()


class GatedFile(SignallingFile):
    """A disk that hangs: every ``write`` waits until the test opens ``gate``."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.gate_timed_out = False

    def write(self, text: str) -> int:
        if not self.gate.wait(10.0):
            self.gate_timed_out = True  # a send that waited for us would have hung the test
        return super().write(text)


def test_record_sink_flushes_every_batch_without_waiting_for_close(tmp_path: Path) -> None:
    """A crash (kill -9) loses only the rows still queued: each row reaches the file while the
    sink is open (tests/test_record_hardening.py measures it against a real SIGKILL)."""
    path = tmp_path / "take.csv"
    sink = RecordSink(path, name="rec", time_of_day=lambda: 0.0, clock=lambda: 0.0)
    for number in range(3):
        sink.send(Frame(weights_of(number), number, number / 60))
        deadline_s = time.monotonic() + 10.0
        while len(parse_rows(path.read_text())) < number + 1:  # on disk, the sink still open
            assert time.monotonic() < deadline_s, f"row {number} was not flushed"
            time.sleep(0.002)
    sink.close()
    sink.close()  # idempotent
    assert len(parse_rows(path.read_text())) == 3
    assert sink.closed and sink.frames_written == 3 and sink.send_errors == 0


def test_rows_of_a_frame_sequence_land_in_order_with_the_closing_neutral_frame(
    tmp_path: Path,
) -> None:
    path = tmp_path / "take.csv"
    sink = RecordSink(path, name="rec", time_of_day=lambda: 30_000.0)
    frames = [weights_of(i) for i in range(600)] + [np.zeros(52, dtype=np.float32)]
    times = [i / 60 for i in range(len(frames))]
    for number, (weights, t) in enumerate(zip(frames, times, strict=True)):
        sink.send(Frame(weights, number, t))
    sink.close()  # as the daemon does right after the neutral frame
    take = load_take(path)
    assert len(take) == 601 and sink.frames_written == 601 and sink.send_errors == 0
    np.testing.assert_allclose(take.times_s, times, rtol=0, atol=1e-3 / 60)
    np.testing.assert_allclose(take.weights, np.stack(frames), rtol=FLOAT32_RTOL, atol=CSV_ATOL)
    assert take.weights[-1].tolist() == [0.0] * 52


def test_a_writer_behind_by_more_than_the_queue_drops_new_rows_without_blocking_send(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "take.csv"
    files: list[GatedFile] = []

    def opener(target: Path) -> TextIO:
        files.append(GatedFile(target))
        return cast(TextIO, files[0])

    sink = RecordSink(path, name="rec", time_of_day=lambda: 0.0, opener=opener, max_pending_rows=5)
    frames = [weights_of(i) for i in range(12)]
    with caplog.at_level(logging.WARNING, logger="vadbridge.outputs"):
        for number, weights in enumerate(frames):  # the writer hangs on the header meanwhile
            sink.send(Frame(weights, number, number / 60))
        assert sink.send_errors == 7 and sink.frames_written == 0
        files[0].gate.set()
        sink.close()
    assert not files[0].gate_timed_out
    assert sink.frames_written == 5 and sink.send_errors == 7
    take = load_take(path)
    np.testing.assert_allclose(take.weights, np.stack(frames[:5]), rtol=FLOAT32_RTOL, atol=CSV_ATOL)
    warnings = [r.getMessage() for r in caplog.records if "overflow" in r.getMessage()]
    assert len(warnings) == 1 and "5 rows behind" in warnings[0]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_a_bad_queue_bound_is_rejected(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="max_pending_rows"):
        RecordSink(tmp_path / "take.csv", name="rec", max_pending_rows=bad)  # type: ignore[arg-type]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_counts_every_lost_row_in_the_writer(caplog: pytest.LogCaptureFixture) -> None:
    sink = RecordSink("/dev/full", name="rec")
    with caplog.at_level(logging.WARNING, logger="vadbridge.outputs"):
        for number in range(30):
            sink.send(Frame(weights_of(number), number, number / 60))
        sink.close()
    assert sink.frames_written == 0
    assert sink.send_errors >= 30
    assert len([r for r in caplog.records if "ENOSPC" in r.getMessage()]) == 1


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_is_counted_and_logged_once_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = iter(range(1000))
    sink = RecordSink("/dev/full", name="rec", clock=lambda: float(next(ticks)))
    with caplog.at_level(logging.WARNING, logger="vadbridge.outputs"):
        for number in range(20):
            sink.send(Frame(weights_of(number), number, number / 60))  # every send flushes
        sink.close()
    assert sink.send_errors >= 20
    warnings = [r for r in caplog.records if "ENOSPC" in r.getMessage()]
    assert len(warnings) == 1
    assert "rec" in warnings[0].getMessage()


def test_an_unwritable_path_fails_at_construction_naming_output_and_path(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "take.csv"
    with pytest.raises(OSError, match=r"output 'rec'.*no-such-dir"):
        RecordSink(path, name="rec")


def test_send_after_close_is_counted_not_raised(tmp_path: Path) -> None:
    sink = RecordSink(tmp_path / "take.csv", name="rec")
    sink.close()
    sink.send(Frame(weights_of(0), 0, 0.0))
    assert sink.send_errors == 1
    assert sink.frames_written == 0


# --- reading takes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fps", "expected"),
    [
        ("12:27:47:47.169", 60, 12 * 3600 + 27 * 60 + 47 + 47.169 / 60),
        ("00:00:01:15", 30, 1.5),
        (" 00:00:00:00.000 ", 60, 0.0),
    ],
)
def test_parse_timecode_reads_frames_and_subframes(text: str, fps: int, expected: float) -> None:
    assert parse_timecode(text, fps) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("text", "match"),
    [("12:27:47", "HH:MM:SS:FF"), ("00:61:00:00.0", "below 60"), ("00:00:00:60.0", "--timecode")],
)
def test_parse_timecode_names_what_is_wrong(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_timecode(text, 60)


def test_a_recorded_take_loads_back_with_its_values_and_times(tmp_path: Path) -> None:
    path = tmp_path / "take.csv"
    sink = RecordSink(path, name="rec", time_of_day=lambda: 50_000.0)
    frames = [weights_of(i) for i in range(10)]
    times = [i / 30 for i in range(10)]
    for number, (weights, t) in enumerate(zip(frames, times, strict=True)):
        sink.send(Frame(weights, number, t))
    sink.close()
    take = load_take(path)
    assert len(take) == 10
    np.testing.assert_allclose(take.times_s, times, rtol=0, atol=1e-3 / 60)
    np.testing.assert_allclose(take.weights, np.stack(frames), rtol=FLOAT32_RTOL, atol=CSV_ATOL)
    assert take.frame_rate == 30


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def test_columns_match_by_name_in_any_case_and_order_extra_columns_ignored(
    tmp_path: Path,
) -> None:
    names = [upper_camel(name) for name in ARKIT_NAMES]
    order = np.random.default_rng(3).permutation(52)
    header = ["Extra", "timecode", *(names[i].lower() for i in order), "HeadYaw"]
    weights = weights_of(7)
    row = ["x", "00:00:00:00.000", *(f"{weights[i]:.10f}" for i in order), "0.5"]
    path = tmp_path / "foreign.csv"
    _write_csv(path, header, [row])
    take = load_take(path)
    np.testing.assert_allclose(take.weights[0], weights, rtol=FLOAT32_RTOL, atol=CSV_ATOL)


@pytest.mark.parametrize("count_column", ["BlendShapeCount", "BlendshapeCount"])
def test_both_spellings_of_the_apps_count_column_load(tmp_path: Path, count_column: str) -> None:
    # Older Live Link Face takes write BlendShapeCount, newer ones BlendshapeCount.
    header = APP_HEADER.replace("BlendShapeCount", count_column).split(",")
    assert header[1] == count_column
    weights = weights_of(11)
    by_name = {upper_camel(name): f"{w:.10f}" for name, w in zip(ARKIT_NAMES, weights, strict=True)}
    row = ["12:27:47:47.169", "61", *(by_name[name] for name in header[2:-9]), *["0"] * 9]
    path = tmp_path / "app.csv"
    _write_csv(path, header, [row, ["12:27:47:49.169", *row[1:]]])
    take = load_take(path)
    np.testing.assert_allclose(take.weights[1], weights, rtol=FLOAT32_RTOL, atol=CSV_ATOL)
    assert take.times_s.tolist() == pytest.approx([0.0, 2 / 60])


@pytest.mark.parametrize("count_column", ["BlendShapeCount", "BlendshapeCount"])
def test_replay_command_plays_a_take_with_either_count_spelling(
    tmp_path: Path, receivers: dict[str, socket.socket], count_column: str
) -> None:
    path = tmp_path / "app.csv"
    zeros = ["0"] * 61
    _write_csv(path, APP_HEADER.replace("BlendShapeCount", count_column).split(","),
               [["00:00:00:00.000", "61", *zeros], ["00:00:00:01.000", "61", *zeros]])
    assert _run_replay(["replay", str(path), "--livelink-out", _port(receivers["livelink"])]) == 0
    frames = [decode_livelink(receivers["livelink"].recv(65536)) for _ in range(3)]
    assert len(frames) == 3  # two rows, then the neutral frame
    assert len(frames[0].device_id) == 36  # the default id, readable by PyLiveLinkFace


def test_a_missing_shape_column_is_an_error_naming_it(tmp_path: Path) -> None:
    header = APP_HEADER.split(",")
    header.remove("TongueOut")
    header.remove("JawOpen")
    path = tmp_path / "partial.csv"
    _write_csv(path, header, [["00:00:00:00.000", "61", *["0"] * 59]])
    with pytest.raises(TakeError, match=r"missing column\(s\): JawOpen, TongueOut"):
        load_take(path)


def test_a_timecode_going_backwards_is_an_error_naming_the_line(tmp_path: Path) -> None:
    zeros = ["0"] * 61
    rows = [["00:00:01:00.000", "61", *zeros], ["00:00:00:59.000", "61", *zeros]]
    path = tmp_path / "back.csv"
    _write_csv(path, APP_HEADER.split(","), rows)
    with pytest.raises(TakeError, match=r"back\.csv:3: timecode '00:00:00:59.000' goes backwards"):
        load_take(path)


def test_a_take_running_past_midnight_keeps_its_timing(tmp_path: Path) -> None:
    zeros = ["0"] * 61
    rows = [["23:59:59:30.000", "61", *zeros], ["00:00:00:00.000", "61", *zeros]]
    path = tmp_path / "midnight.csv"
    _write_csv(path, APP_HEADER.split(","), rows)
    assert load_take(path).times_s.tolist() == pytest.approx([0.0, 0.5])


def test_a_file_without_frames_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(APP_HEADER + "\n")
    with pytest.raises(TakeError, match="no frames"):
        load_take(path)


# --- replay timing (a fake clock: order, count and deadlines, no wall time) -------------------


def _take(times: list[float]) -> Take:
    weights = np.stack([weights_of(i) for i in range(len(times))])
    return Take(np.array(times, dtype=np.float64), weights)


def test_replay_sends_every_frame_in_order_at_its_timecode() -> None:
    clock = FakeClock()
    take = _take([0.0, 0.1, 0.25, 0.25, 1.0])
    sink = Recorder(clock)
    count = replay(take, [sink], speed=2.0, clock=clock, sleep=clock.sleep)
    assert count == 5
    assert [frame for _, frame, _, _ in sink.sent] == [0, 1, 2, 3, 4]
    assert [t for _, _, t, _ in sink.sent] == [0.0, 0.1, 0.25, 0.25, 1.0]
    assert [when - 100.0 for when, *_ in sink.sent] == pytest.approx([0, 0.05, 0.125, 0.125, 0.5])
    for (_, _, _, sent), expected in zip(sink.sent, take.weights, strict=True):
        np.testing.assert_array_equal(sent, expected)


def test_replay_deadlines_are_absolute_so_slow_sends_do_not_drift() -> None:
    clock = FakeClock()
    take = _take([i / 60 for i in range(120)])
    sink = Recorder(clock, cost_s=0.01)  # each send costs 60 % of a frame period
    replay(take, [sink], clock=clock, sleep=clock.sleep)
    started = [when - 100.0 for when, *_ in sink.sent]
    assert started == pytest.approx([i / 60 for i in range(120)], abs=1e-9)


def test_replay_repeats_one_frame_period_after_the_last_frame() -> None:
    clock = FakeClock()
    take = _take([0.0, 0.5, 1.0])
    sink = Recorder(clock)
    count = replay(take, [sink], repeat=2, clock=clock, sleep=clock.sleep)
    assert count == 6
    assert [frame for _, frame, _, _ in sink.sent] == list(range(6))
    assert [t for _, _, t, _ in sink.sent] == pytest.approx([0, 0.5, 1.0, 1.5, 2.0, 2.5])


# --- record -> replay -> real UDP receivers ---------------------------------------------------


@pytest.fixture
def receivers() -> Iterator[dict[str, socket.socket]]:
    socks: dict[str, socket.socket] = {}
    for name in ("vmc", "osc", "livelink"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5.0)
        socks[name] = sock
    yield socks
    for sock in socks.values():
        sock.close()


def _port(sock: socket.socket) -> str:
    return f"127.0.0.1:{sock.getsockname()[1]}"


def _run_replay(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    replay_module.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


def test_a_recording_replays_to_real_receivers_with_its_values(
    tmp_path: Path, receivers: dict[str, socket.socket]
) -> None:
    path = tmp_path / "take.csv"
    sink = RecordSink(path, name="rec", time_of_day=lambda: 45_000.0)
    frames = [weights_of(100 + i) for i in range(5)]
    for number, weights in enumerate(frames):
        sink.send(Frame(weights, number, number / 30))
    sink.close()

    status = _run_replay(
        [
            "replay", str(path), "--speed", "20",
            "--vmc-out", _port(receivers["vmc"]),
            "--osc-out", _port(receivers["osc"]), "--osc-mode", "array",
            "--livelink-out", _port(receivers["livelink"]),
        ]
    )  # fmt: skip
    assert status == 0

    expected = [*frames, np.zeros(52, dtype=np.float32)]  # the take, then a neutral frame
    for weights in expected:
        vmc = decode_packet(receivers["vmc"].recv(65536))
        values = {args[0]: args[1] for address, args in vmc if address == "/VMC/Ext/Blend/Val"}
        got = [values[upper_camel(name)] for name in ARKIT_NAMES]
        np.testing.assert_allclose(got, weights, rtol=FLOAT32_RTOL, atol=CSV_ATOL)
        assert vmc[52][0] == "/VMC/Ext/Blend/Apply"

        ((address, osc_args),) = decode_packet(receivers["osc"].recv(65536))
        assert address == "/blendshape"
        np.testing.assert_allclose(osc_args, weights, rtol=FLOAT32_RTOL, atol=CSV_ATOL)

        frame = decode_livelink(receivers["livelink"].recv(65536))
        got = [frame.values[upper_camel(name)] for name in ARKIT_NAMES]
        np.testing.assert_allclose(got, weights, rtol=FLOAT32_RTOL, atol=CSV_ATOL)
        assert frame.rate == (30, 1)


def test_replay_without_an_output_exits_2_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "take.csv"
    path.write_text(APP_HEADER + "\n")
    assert cli_main(["replay", str(path)]) == 2
    assert "choose at least one of --vmc-out" in capsys.readouterr().err


def test_replay_of_a_bad_take_exits_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "take.csv"
    path.write_text("Timecode,BlendShapeCount,EyeBlinkLeft\n00:00:00:00.000,61,0.5\n")
    assert cli_main(["replay", str(path), "--vmc-out", "127.0.0.1:39539"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vadbridge replay: error:") and "missing column(s): BrowDownLeft" in err
    assert len(err.strip().splitlines()) == 1


def test_replay_with_a_bad_address_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["replay", "take.csv", "--vmc-out", "localhost"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "expected HOST:PORT" in err and len(err.strip().splitlines()) == 1
