"""``vadbridge run``: load and validate the config, build the bridge, stream until a signal."""

from __future__ import annotations

import argparse
import asyncio
import importlib.resources
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import vadbridge
from vadbridge.config import (
    FRAME_RATE_RANGE,
    BridgeConfig,
    ConfigError,
    IFacialMocapOutputConfig,
    MqttOutputConfig,
    RecordOutputConfig,
    VtubeStudioOutputConfig,
    WebConfig,
    apply_overrides,
    load_config,
    websocket_host_port,
)
from vadbridge.hangup import EarlyHangup, hold
from vadbridge.model.optional import installed
from vadbridge.scheduling import freeze_startup_objects, limit_blas_threads, request_realtime
from vadbridge.service_notify import ServiceNotifier

# The repository's config/ folder, installed as the package ``vadbridge.presets``.
DEFAULT_CONFIG = Path(str(importlib.resources.files("vadbridge.presets").joinpath("default.yaml")))
log = logging.getLogger("vadbridge")
BANNER_MAX_OUTPUTS = 8  # a crowd has thousands of outputs: the banner names the first few

PANEL_NEEDS_AIOHTTP = "the control panel needs aiohttp: pip install 'vadbridge[web]'"

if TYPE_CHECKING:
    from vadbridge.daemon import Bridge
    from vadbridge.web import ControlPanel


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="start the bridge daemon",
        description="Receive VAD/emotions over OSC and MQTT; stream ARKit blendshapes.",
    )
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML config (default: the installed copy of config/default.yaml)")
    parser.add_argument("--check", action="store_true",
                        help="validate the config, the model and the outputs; say whether the "
                             "MQTT brokers' ports are open; exit")
    low, high = FRAME_RATE_RANGE
    parser.add_argument("--fps", type=int, default=None,
                        help=f"override frame_rate ({low}..{high})")
    parser.add_argument("--osc-in", metavar="HOST:PORT", help="OSC input address (replaces)")
    parser.add_argument("--vmc-out", metavar="HOST:PORT", help="VMC output address (replaces)")
    parser.add_argument("--mqtt", metavar="HOST:PORT",
                        help="MQTT broker of the (first) MQTT input (replaces)")
    parser.add_argument("--web", metavar="HOST:PORT",
                        help="serve the control panel there (turns web on; an address other "
                             "than loopback needs a token: see the README)")
    parser.add_argument("--realtime", action="store_true",
                        help="ask for the SCHED_FIFO real-time policy (root or CAP_SYS_NICE), "
                             "so other processes cannot delay frames")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, with a line per accepted input (at most one per "
                             "input kind per second)")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    # The launcher (vadbridge.__main__) installed it first thing; this covers other callers.
    hangup = hold()
    try:
        return _run(args, hangup)
    finally:
        hangup.restore()


def _run(args: argparse.Namespace, hangup: EarlyHangup) -> int:
    from vadbridge.daemon import OutputTaskError
    from vadbridge.wiring import WiringError, build_bridge

    path = args.config
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG

    def with_flags(loaded: BridgeConfig) -> BridgeConfig:
        """The command line's overrides, at start and again on every reload."""
        return apply_overrides(loaded, fps=args.fps, osc_in=args.osc_in, vmc_out=args.vmc_out,
                               mqtt=args.mqtt, web=args.web)

    try:
        # No file (an installed package without the repo's config/): the built-in defaults,
        # which equal config/default.yaml (tests/test_config.py).
        config = with_flags(load_config(path))
    except ConfigError as error:
        print(f"vadbridge run: {error}", file=sys.stderr)
        return 2
    if config.web.enabled and not installed("aiohttp"):
        print(f"vadbridge run: {PANEL_NEEDS_AIOHTTP}", file=sys.stderr)
        return 2
    label = str(path) if path is not None else "built-in defaults"
    level = logging.DEBUG if args.verbose else getattr(logging, config.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose:  # -v is for vadbridge's lines, not asyncio's ("Using selector: ...")
        logging.getLogger("asyncio").setLevel(logging.INFO)
    if args.check:
        return _check(config, label)
    # The frame loop is one thread: a multi-threaded BLAS only fights it for the cores.
    limit_blas_threads(1)
    if args.realtime and not request_realtime():
        log.warning("--realtime: SCHED_FIFO was refused (needs root or CAP_SYS_NICE); "
                    "running with the normal policy")
    try:
        bridge = build_bridge(config)
    except (WiringError, OSError, ValueError) as error:
        print(f"vadbridge run: {label}: {error}", file=sys.stderr)
        return 2
    from vadbridge.reload import Reloader

    # Without a file there is nothing to reload on SIGHUP, but the panel's changes use it too.
    reloader = Reloader(
        bridge, path, config, keep_log_level=args.verbose,
        prepare=with_flags,
    )
    panel = None
    if config.web.enabled:
        from vadbridge.web import attach_panel

        panel = attach_panel(bridge, config, reloader)
    freeze_startup_objects()
    try:
        asyncio.run(_serve(bridge, reloader, hangup=hangup, notifier=ServiceNotifier(),
                           banner=lambda: banner_lines(config, label, bridge, panel=panel)))
    except OSError as error:  # a listener could not bind; its message names it (no "[Errno N]")
        print(f"vadbridge run: {error.strerror or error}", file=sys.stderr)
        return 1
    except OutputTaskError as error:
        print(f"vadbridge run: {error}", file=sys.stderr)
        return 1
    return 0


async def _serve(bridge: Any, reloader: Any = None,
                 banner: Callable[[], list[str]] | None = None,
                 hangup: EarlyHangup | None = None,
                 notifier: ServiceNotifier | None = None) -> None:
    """Bind the listeners, log the banner (``banner()``, called once they are bound, so it
    shows the bound ports), stream until a signal. A SIGHUP ``hangup`` caught before the
    reload handler was installed reloads now. ``notifier`` tells a service manager when the
    bridge is ready, reloading and stopping."""
    notifier = notifier if notifier is not None else ServiceNotifier(address="")
    for source in bridge.sources:
        start = getattr(source, "start", None)
        if start is not None:
            await start()  # bind listeners before the first frame: a taken port fails now
    task = asyncio.current_task()
    assert task is not None
    _stop_on_signals(task, first=notifier.stopping)
    loop = asyncio.get_running_loop()
    sighup = getattr(signal, "SIGHUP", None)  # not on Windows
    if reloader is None or reloader.path is None:
        sighup = None  # no file to reload
    held = False
    if sighup is not None:
        def reload_on_hangup() -> None:
            notifier.reloading()
            reloader.request(then=notifier.reloaded)

        loop.add_signal_handler(sighup, reload_on_hangup)
        held = hangup is not None and hangup.requested
        if held:  # ready once the file as it is now runs
            reloader.request(then=notifier.ready)
    for line in banner() if banner is not None else []:
        log.info("%s", line)
    if not held:
        notifier.ready()
    try:
        await bridge.run()
    except asyncio.CancelledError:
        log.info("stopped: sent a neutral frame to every output")
    finally:
        if sighup is not None:
            # No reload while shutting down; removing the handler would restore SIGHUP's
            # default, which ends the process before it exits 0.
            loop.add_signal_handler(sighup, lambda: None)
        notifier.stopping()  # when the bridge ended by itself (SIGTERM said it already)
        notifier.close()


def banner_lines(config: BridgeConfig, label: str, bridge: Bridge, *,
                 pid: int | None = None, panel: ControlPanel | None = None) -> list[str]:
    """The startup banner: what this process runs and where its inputs and outputs are.

    ``label`` is the config file (or "built-in defaults"); inputs come from the bridge's sources
    (bound ports, MQTT subscriptions), outputs from its bindings (this shard's outputs only);
    ``panel`` (one of the sources) has a line of its own: its page's address, and the token
    when the bridge made one. Every address appears once. The last line starts with
    "streaming at" (tests wait for it).
    """
    from vadbridge.inputs.mqtt import MqttSource
    from vadbridge.inputs.osc import OscSource
    from vadbridge.outputs.mqtt import resolve_topic
    from vadbridge.wiring import checkpoint_path

    lines = [
        f"vadbridge {vadbridge.__version__}, pid {os.getpid() if pid is None else pid}",
        f"config: {label}",
        f"model: {checkpoint_path(config)} (engine {config.model.engine})",
    ]
    sources = [source for source in bridge.sources if source is not panel]
    for source in sources:
        if isinstance(source, OscSource):
            senders = source.allow_list
            only = "" if senders is None else ", only from " + ", ".join(map(str, senders.networks))
            lines.append(f"input osc: listening on {source.host}:{source.port}{only}")
        elif isinstance(source, MqttSource):
            lines.append(f"input mqtt: broker {source.host}:{source.port}, "
                         f"topics {source.topics_summary}")
        else:  # pragma: no cover - wiring builds only the two above
            lines.append(f"input {source.name}")
    if not sources:
        lines.append("inputs: none")
    if panel is not None:
        lines.append(panel_banner_line(panel))
    for binding in bridge.bindings[:BANNER_MAX_OUTPUTS]:
        output = binding.config
        if isinstance(output, RecordOutputConfig):
            where = f"file {output.path}"
        elif isinstance(output, MqttOutputConfig):
            where = (f"broker {output.host}:{output.port}, "
                     f"topic {resolve_topic(output.topic, output.avatar)}")
        elif isinstance(output, VtubeStudioOutputConfig):
            where = f"VTube Studio at {output.url}"
        elif isinstance(output, IFacialMocapOutputConfig) and output.mode == "handshake":
            where = f"listening for handshakes on {output.listen_host}:{output.listen_port}"
        else:  # the UDP outputs: vmc, osc, livelink
            where = f"to {output.host}:{output.port}"
        lines.append(f"output {output.type}: {where}, avatar {output.avatar}")
    hidden = len(bridge.bindings) - BANNER_MAX_OUTPUTS
    if hidden > 0:
        lines.append(f"... and {hidden} more output{_plural(hidden)}")
    count = len(bridge.bindings)
    lines.append(f"streaming at {config.frame_rate} fps to {count} output{_plural(count)} "
                 "(Ctrl+C to stop)")
    return lines


def panel_banner_line(panel: ControlPanel) -> str:
    """Where the control panel is; a token the bridge made is printed here, and only here."""
    if panel.token is None:
        return f"control panel: {panel.url} (loopback only, no token)"
    if panel.generated_token:
        return f"control panel: {panel.url} (token required)"
    return f"control panel: {panel.address} (token required: {_token_source(panel.config)})"


def _token_source(web: WebConfig) -> str:
    return f"from ${web.token_env}" if web.token_env is not None else "web.token in the config"


def _plural(count: int) -> str:
    return "" if count == 1 else "s"


def _stop_on_signals(task: asyncio.Task[Any],
                     first: Callable[[], None] = lambda: None) -> None:
    """SIGINT/SIGTERM call ``first()`` and cancel ``task`` (the bridge then sends neutral frames
    and exits 0)."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        first()
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop)
        except NotImplementedError:  # Windows event loops: plain handlers, woken thread-safely
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop))


def _check(config: Any, label: str) -> int:
    """Validate what a start would use (model, avatar table, outputs' hosts) without opening
    outputs (a record output would truncate its take) or binding listeners; report whether the
    MQTT brokers' and VTube Studio's ports accept connections (the bridge retries them anyway)."""
    from vadbridge.config import RecordOutputConfig
    from vadbridge.wiring import (
        WiringError,
        bound_rows,
        build_table,
        check_udp_output,
        load_model_engine,
    )

    try:
        load_model_engine(config)
        for index, output, _row in bound_rows(config, build_table(config)):
            if isinstance(output, RecordOutputConfig):
                folder = Path(output.path).parent
                if not os.access(folder, os.W_OK):
                    raise OSError(f"record output {output.path}: folder {folder} is not writable")
            elif isinstance(output, MqttOutputConfig | VtubeStudioOutputConfig):
                host, port, shown = _tcp_destination(output)
                try:
                    socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                except OSError as error:
                    raise OSError(f"{output.type} output {shown}: "
                                  f"{error.strerror or error}") from None
            else:  # what the UDP sink will do at start: resolve and connect
                check_udp_output(index, output)
    except (WiringError, OSError, ValueError) as error:
        print(f"vadbridge run: {label}: {error}", file=sys.stderr)
        return 2
    print(f"{label}: OK ({config.frame_rate} fps, {len(config.inputs)} input(s), "
          f"{len(config.outputs)} output(s))")
    brokers = [c for c in (*config.inputs, *config.outputs) if c.type == "mqtt"]
    for broker in brokers:
        refused = _connect_error(broker.host, broker.port)
        print(f"mqtt {broker.host}:{broker.port}: port open" if refused is None else
              f"mqtt {broker.host}:{broker.port}: unreachable ({refused}); "
              "the bridge will stream anyway and keep retrying")
    for output in config.outputs:
        if isinstance(output, VtubeStudioOutputConfig):
            _check_vtube_studio(output)
    if config.web.enabled:
        _check_panel(config.web)
    return 0


def _check_panel(web: WebConfig) -> None:
    from vadbridge.web import page_address

    if not web.needs_token:
        note = "loopback: no token"
    elif web.token is None:
        note = "token required: a random one is printed at start"
    else:
        note = f"token required: {_token_source(web)}"
    print(f"web: control panel on {page_address(web.host, web.port)} ({note})")


def _check_vtube_studio(output: VtubeStudioOutputConfig) -> None:
    """Say whether something listens at the API's port."""
    refused = _connect_error(*websocket_host_port(output.url))
    print(f"vtube_studio {output.url}: port open" if refused is None else
          f"vtube_studio {output.url}: nothing listens there ({refused}): start VTube "
          "Studio and turn on 'Start API (allow plugins)'; the bridge will stream anyway "
          "and keep retrying")


def _tcp_destination(output: MqttOutputConfig | VtubeStudioOutputConfig) -> tuple[str, int, str]:
    """Host, port, and how the config names them (an MQTT output's host:port, a URL)."""
    if isinstance(output, VtubeStudioOutputConfig):
        return (*websocket_host_port(output.url), output.url)
    return output.host, output.port, f"{output.host}:{output.port}"


def _connect_error(host: str, port: int) -> OSError | None:
    """Whether something accepts a TCP connection there (one connect, 1 s at most)."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return None
    except OSError as error:
        return error
