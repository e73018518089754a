"""Outputs: pure encoders (weights -> UDP datagrams) and the UDP sink that sends them."""

from bridge.outputs.layout import PacketLayout
from bridge.outputs.livelink import LIVE_LINK_NAMES, LiveLinkEncoder
from bridge.outputs.osc import OscEncoder
from bridge.outputs.udp import Encoder, UdpSink
from bridge.outputs.vmc import VmcEncoder

__all__ = [
    "LIVE_LINK_NAMES",
    "Encoder",
    "LiveLinkEncoder",
    "OscEncoder",
    "PacketLayout",
    "UdpSink",
    "VmcEncoder",
]
