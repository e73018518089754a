"""Outputs. The pure encoders (a ``Frame`` in, datagrams out) are exported here; the sinks that
do I/O live in their own modules: ``udp.UdpSink``, ``mqtt.MqttSink``, ``record.RecordSink``,
``ifacialmocap_sink.HandshakeSink``."""

from vadbridge.outputs.ifacialmocap import IFacialMocapEncoder
from vadbridge.outputs.layout import Encoder, PacketLayout
from vadbridge.outputs.livelink import LIVE_LINK_NAMES, LiveLinkEncoder
from vadbridge.outputs.osc import OscEncoder
from vadbridge.outputs.vmc import VmcEncoder
from vadbridge.outputs.vrm import VrmVmcEncoder

__all__ = [
    "LIVE_LINK_NAMES",
    "Encoder",
    "IFacialMocapEncoder",
    "LiveLinkEncoder",
    "OscEncoder",
    "PacketLayout",
    "VmcEncoder",
    "VrmVmcEncoder",
]
