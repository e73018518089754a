"""With ``avatars.accept_new: false`` a sender spraying made-up avatar ids cannot fill the table."""

from __future__ import annotations

import socket

from bridge_harness import UdpReceiver, config_from_yaml, osc, running_bridge, send_osc
from conftest import free_port


def test_made_up_avatar_ids_are_refused_and_counted() -> None:
    vmc = UdpReceiver()
    osc_port = free_port(socket.SOCK_DGRAM)
    config = config_from_yaml(f"""
stats_interval_s: 0
avatars: {{ids: [default], max: 64, accept_new: false}}
inputs: [{{type: osc, host: 127.0.0.1, port: {osc_port}}}]
outputs: [{{type: vmc, host: 127.0.0.1, port: {vmc.port}, avatar: host}}]
""")
    try:
        with running_bridge(config) as bridge:
            for i in range(100):
                send_osc(osc_port, osc(f"/avatar/spray-{i}/vad", 0.5, 0.5, 0.5))
            send_osc(osc_port, osc("/avatar/host/vad", 0.8, 0.6, 0.5))
            vmc.receive(0.5)
            ids = list(bridge.table.ids)
            rejected = bridge.input_stats.snapshot()["rejected"]
            accepted = bridge.input_stats.snapshot()["accepted"]
            target = bridge.table.target_vad[bridge.table.index["host"]].tolist()
    finally:
        vmc.close()
    assert ids == ["default", "host"]  # the configured avatar and the output's, nothing else
    assert rejected == {"avatar.limit": 100}
    assert accepted == {"osc": 1}  # a refused message is counted once, never parsed
    assert target == [0.800000011920929, 0.6000000238418579, 0.5]
