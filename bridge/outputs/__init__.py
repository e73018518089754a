"""Outputs: pure encoders (weights -> UDP datagrams) and the UDP sink that sends them."""

from vadbridge.outputs.layout import PacketLayout
from vadbridge.outputs.livelink import LIVE_LINK_NAMES, LiveLinkEncoder
from vadbridge.outputs.osc import OscEncoder
from vadbridge.outputs.udp import Encoder, UdpSink
from vadbridge.outputs.vmc import VmcEncoder

__all__ = [
    "LIVE_LINK_NAMES",
    "Encoder",
    "LiveLinkEncoder",
    "OscEncoder",
    "PacketLayout",
    "UdpSink",
    "VmcEncoder",
]
