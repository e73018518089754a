"""Config -> a ready Bridge: the model engine, the avatar table, sources and sinks.

Nothing here opens a socket for listening (sources, and ifacialmocap outputs in handshake mode,
bind when the daemon starts them); output sockets are created (connected UDP), which fails fast
on a host that does not resolve.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from vadbridge.config import (
    BridgeConfig,
    IFacialMocapOutputConfig,
    LiveLinkOutputConfig,
    MqttInputConfig,
    MqttOutputConfig,
    OscInputConfig,
    OscOutputConfig,
    OutputConfig,
    RecordOutputConfig,
    SmoothingConfig,
    VmcOutputConfig,
    VtubeStudioOutputConfig,
)
from vadbridge.core.animator import Animator, Engine
from vadbridge.core.avatars import AvatarLimitError, AvatarTable
from vadbridge.core.smoothing import AttackRelease, TimeConstants
from vadbridge.core.stats import InputStats
from vadbridge.daemon import Binding, Bridge, LiveSettings, Sink, Source
from vadbridge.inputs import source_rate_limiter
from vadbridge.inputs.mqtt import MqttSource
from vadbridge.inputs.osc import MAX_UDP_PAYLOAD_BYTES, OscSource
from vadbridge.model.api import DEFAULT_CHECKPOINT, resolve_checkpoint
from vadbridge.model.checkpoint import load_engine
from vadbridge.outputs import (
    Encoder,
    IFacialMocapEncoder,
    LiveLinkEncoder,
    OscEncoder,
    VmcEncoder,
    VrmVmcEncoder,
)
from vadbridge.outputs.ifacialmocap_sink import HandshakeSink
from vadbridge.outputs.mqtt import MqttSink
from vadbridge.outputs.record import RecordSink
from vadbridge.outputs.udp import UdpOpenError, UdpSink, open_udp_socket

log = logging.getLogger("vadbridge")


class WiringError(Exception):
    """The config is valid on its own but cannot be put together (e.g. an output's avatar is
    owned by another shard)."""


def checkpoint_path(config: BridgeConfig) -> Path:
    """The checkpoint file ``model.checkpoint`` names (``default`` = the bundled model)."""
    checkpoint = config.model.checkpoint
    return DEFAULT_CHECKPOINT if checkpoint == "default" else resolve_checkpoint(checkpoint)


def load_model_engine(config: BridgeConfig) -> Engine:
    engine, _meta = load_engine(checkpoint_path(config))
    if config.model.engine == "lut":
        from vadbridge.model.lut import bake_lut

        return bake_lut(engine)
    if config.model.engine == "onnxruntime":  # the optional extra, imported only when chosen
        from vadbridge.model.onnx_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(engine)
    return engine


def build_source(config: OscInputConfig | MqttInputConfig, bridge: BridgeConfig,
                 stats: InputStats, *, shard_avatars: frozenset[str] | None = None,
                 admits: Callable[[str], bool] | None = None) -> Source:
    """``shard_avatars``: a shard's avatars (its ids and its outputs'), the only MQTT topics it
    subscribes to, so no avatar's stream is split between instances; None = every avatar.
    ``admits``: which avatars the table takes (asked before parsing); None = all."""
    limiter = source_rate_limiter(bridge.limits.rate_limit_per_source)
    if isinstance(config, OscInputConfig):
        return OscSource(
            config.host, config.port, stats=stats,
            max_datagram_bytes=min(bridge.limits.max_payload_bytes, MAX_UDP_PAYLOAD_BYTES),
            allow_hosts=_allowed_addresses(config), rate_limiter=limiter, admits=admits,
        )
    return MqttSource(
        config, stats=stats, max_payload_bytes=bridge.limits.max_payload_bytes,
        avatars=shard_avatars, rate_limiter=limiter, admits=admits,
    )


def _allowed_addresses(
    config: OscInputConfig,
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None:
    """The parsed networks (any size: OscSource checks membership per sender), None = anyone."""
    return config.allowed_networks or None


def build_sink(config: OutputConfig, bridge: BridgeConfig) -> Sink:
    """The output for ``config`` (``bridge`` gives what the output shares: the frame rate)."""
    name = output_name(config)
    if isinstance(config, RecordOutputConfig):
        return RecordSink(config.path, avatar=config.avatar, name=name)
    if isinstance(config, MqttOutputConfig):
        return MqttSink(config, name=name)
    if isinstance(config, IFacialMocapOutputConfig) and config.mode == "handshake":
        return HandshakeSink(config, name=name)
    if isinstance(config, VtubeStudioOutputConfig):
        # Imported only here: its aiohttp is an optional extra that no other output needs.
        from vadbridge.outputs.vtube_studio_client import VtubeStudioSink

        return VtubeStudioSink(config, name=name, frame_rate=bridge.frame_rate)
    encoder: Encoder
    if isinstance(config, VmcOutputConfig):
        encoder = _vmc_encoder(config)
    elif isinstance(config, OscOutputConfig):
        encoder = OscEncoder(mode=cast(Any, config.mode), prefix=config.prefix,
                             naming=cast(Any, config.naming))
    elif isinstance(config, LiveLinkOutputConfig):
        encoder = LiveLinkEncoder(subject=config.subject, device_id=config.device_id,
                                  fps=bridge.frame_rate)
    elif isinstance(config, IFacialMocapOutputConfig):
        encoder = IFacialMocapEncoder(config.format)
    else:  # pragma: no cover - the config registry and this function grow together
        raise WiringError(f"no sink for output type {config.type!r}")
    return UdpSink(encoder, config.host, config.port, name=name)


def output_name(config: OutputConfig) -> str:
    """How logs and errors name an output: its type and where it goes."""
    if isinstance(config, RecordOutputConfig):
        return f"record {config.path}"
    if isinstance(config, IFacialMocapOutputConfig) and config.mode == "handshake":
        return f"{config.type} listening on {config.listen_host}:{config.listen_port}"
    if isinstance(config, VtubeStudioOutputConfig):
        return f"{config.type} {config.url}"
    return f"{config.type} {config.host}:{config.port}"


def check_udp_output(
    index: int,
    config: VmcOutputConfig | OscOutputConfig | LiveLinkOutputConfig | IFacialMocapOutputConfig,
) -> None:
    """Open and close the socket a UDP output's sink would use (``--check``): connecting
    resolves the host and asks the kernel whether it will send there (a broadcast address or
    an unscoped link-local IPv6 address is refused). An ifacialmocap output in handshake mode
    only resolves its listening address: binding it is the running bridge's, which may hold it
    now. WiringError names the output."""
    try:
        if isinstance(config, IFacialMocapOutputConfig) and config.mode == "handshake":
            try:
                socket.getaddrinfo(config.listen_host, config.listen_port,
                                   type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
            except socket.gaierror as error:
                raise UdpOpenError(output_name(config), f"cannot resolve listen_host "
                                   f"{config.listen_host!r}: {error}", error.errno) from error
        else:
            open_udp_socket(config.host, config.port, output_name(config)).close()
    except OSError as error:
        raise _output_error(index, config, error) from None


def _build_sink_at(index: int, config: OutputConfig, bridge: BridgeConfig) -> Sink:
    try:
        return build_sink(config, bridge)
    except OSError as error:
        raise _output_error(index, config, error) from None


def _output_error(index: int, config: OutputConfig, error: OSError) -> WiringError:
    reason = error.reason if isinstance(error, UdpOpenError) else error.strerror or str(error)
    return WiringError(f"outputs[{index}] ({output_name(config)}): {reason}")


def _vmc_encoder(config: VmcOutputConfig) -> Encoder:
    if config.vrm_presets == "none":
        return VmcEncoder(naming=cast(Any, config.naming), bundle=config.bundle,
                          split=config.split, send_ok_and_time=config.send_ok_and_time)
    return VrmVmcEncoder(
        cast(Any, config.vrm_presets), arkit=config.arkit, naming=cast(Any, config.naming),
        bundle=config.bundle, split=config.split, send_ok_and_time=config.send_ok_and_time,
    )


def build_bridge(config: BridgeConfig, *, engine: Engine | None = None) -> Bridge:
    stats = InputStats()
    table = build_table(config)
    rows = bound_rows(config, table)
    table.accept_new = config.avatars.accept_new
    settings = live_settings(config)
    animator = Animator(
        table, engine if engine is not None else load_model_engine(config),
        tau_s=settings.tau_s, space=settings.space, symmetry=config.model.symmetry,
    )
    # The table now holds the shard's ids and its outputs' avatars (bound_rows added them).
    shard_avatars = (
        frozenset(table.ids) if config.avatars.shard is not None and len(table) else None
    )
    sources = [build_source(source, config, stats, shard_avatars=shard_avatars,
                            admits=table.admits)
               for source in config.inputs]
    bindings: list[Binding] = []
    try:
        for index, output, row in rows:
            bindings.append(Binding(_build_sink_at(index, output, config), row, output))
    except WiringError:
        for binding in bindings:  # a later output failed: the built ones are not used
            binding.sink.close()
        raise
    return Bridge(
        table=table, animator=animator, sources=sources, bindings=bindings,
        frame_rate=config.frame_rate, input_stats=stats, settings=settings,
        pacing=config.pacing,
    )


def live_settings(config: BridgeConfig) -> LiveSettings:
    """The part of ``config`` a running bridge takes without a restart (start and reload)."""
    smoothing = config.smoothing
    return LiveSettings(
        tau_s=time_constants(smoothing), space=smoothing.space,
        idle_timeout_s=smoothing.idle_timeout_s, idle_refresh_hz=config.idle_refresh_hz,
        stats_interval_s=config.stats_interval_s, liveliness=config.liveliness,
    )


def time_constants(smoothing: SmoothingConfig) -> TimeConstants:
    """The animator's time constants from the ``smoothing`` section (``tau_ms`` resolved)."""
    upper, lower = smoothing.upper_s, smoothing.lower_s
    return TimeConstants(
        AttackRelease(smoothing.attack_s, smoothing.release_s),
        upper=None if upper is None else AttackRelease(*upper),
        lower=None if lower is None else AttackRelease(*lower),
    )


def build_table(config: BridgeConfig) -> AvatarTable:
    avatars = config.avatars
    return AvatarTable(avatars.max, initial_ids=avatars.owned_ids,
                       owns=avatars.owns if avatars.shard is not None else None)


def bound_rows(
    config: BridgeConfig, table: AvatarTable
) -> list[tuple[int, OutputConfig, int]]:
    """Each owned output (with its index in the file) and its avatar's row (created if new);
    WiringError when the table cannot hold an output's avatar."""
    rows = []
    for index, output in owned_outputs(config):
        try:
            rows.append((index, output, table.row(output.avatar)))
        except AvatarLimitError as error:
            raise WiringError(f"outputs[{index}].avatar: {error}") from None
    return rows


def owned_outputs(config: BridgeConfig) -> list[tuple[int, OutputConfig]]:
    """The outputs (with their index in the file) whose avatar this instance owns.

    Every shard can run the same file: an output for another shard's avatar is that shard's.
    """
    owned = []
    for index, output in enumerate(config.outputs):
        if config.avatars.owns(output.avatar):
            owned.append((index, output))
        else:
            log.info("outputs[%d] (avatar %r) belongs to another shard: not sent from here",
                     index, output.avatar)
    return owned
