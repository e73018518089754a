"""Scale-out: two bridge processes on one mosquitto split 20 avatars; none is driven twice."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bridge_harness import UdpReceiver
from livelink_decoder import decode_livelink

from vadbridge.config import Shard

REPO = Path(__file__).resolve().parent.parent
AVATARS = [f"npc-{i:02d}" for i in range(20)]


def instance_id(instance: int) -> str:
    return f"{instance:036d}"  # Live Link device ids are 36 characters, like the app's UUIDs


def shard_config(path: Path, shard: str, broker_port: int, receiver_port: int) -> Path:
    # Both instances list every avatar's output (one Live Link subject each, all to one
    # receiver); the device id tells the instances apart on the wire.
    outputs = "\n".join(
        f"  - {{type: livelink, port: {receiver_port}, avatar: {avatar}, subject: {avatar}, "
        f"device_id: '{instance_id(int(shard[0]))}'}}"
        for avatar in AVATARS
    )
    path.write_text(f"""
stats_interval_s: 0
smoothing: {{tau_ms: 0}}
avatars: {{ids: [{", ".join(AVATARS)}], shard: "{shard}"}}
inputs:
  - {{type: mqtt, host: 127.0.0.1, port: {broker_port}, client_id: bridge-{shard[0]}}}
outputs:
{outputs}
""")
    return path


def test_two_instances_each_own_their_avatars(mosquitto, tmp_path: Path) -> None:
    receiver = UdpReceiver()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "vadbridge", "run", "--config",
             str(shard_config(tmp_path / f"shard{k}.yaml", f"{k}/2", mosquitto.port,
                              receiver.port))],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for k in (1, 2)
    ]
    try:
        time.sleep(2.0)  # both connected and subscribed (retrying if not yet)
        happy = '{"emotion": "happiness"}'
        deadline = time.monotonic() + 15
        smiles: dict[str, float] = {}
        while time.monotonic() < deadline and len(smiles) < len(AVATARS):
            mosquitto.publish_sync([(f"vadbridge/{a}/emotion", happy) for a in AVATARS])
            for _, data in receiver.receive(0.5):
                frame = decode_livelink(data)
                if frame.values["MouthSmileLeft"] > 0.5:
                    smiles[frame.subject] = frame.values["MouthSmileLeft"]
        receiver.drain()
        senders: dict[str, set[str]] = {a: set() for a in AVATARS}
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                data = receiver.sock.recv(65536)
            except TimeoutError:
                continue
            frame = decode_livelink(data)
            senders[frame.subject].add(frame.device_id)
    finally:
        for process in processes:
            process.terminate()
        stderr = [process.communicate(timeout=10)[1] for process in processes]
        receiver.close()
    assert all(process.returncode == 0 for process in processes), stderr
    assert sorted(smiles) == AVATARS  # every avatar reacted to its own topic
    # Each avatar's frames come from exactly one instance: the one whose shard owns it.
    for avatar, instances in senders.items():
        owner = 1 if Shard(1, 2).owns(avatar) else 2
        assert instances == {instance_id(owner)}, (avatar, instances)
    assert 0 < sum(Shard(1, 2).owns(a) for a in AVATARS) < len(AVATARS)
    assert "Traceback" not in "".join(stderr)


def test_a_shard_subscribes_to_its_ids_and_its_own_outputs_avatars(tmp_path: Path) -> None:
    """An output may name an avatar that is not in ``ids``: the shard that owns it must
    subscribe to its topics too, or that avatar would never get MQTT input."""
    from vadbridge.config import parse_config
    from vadbridge.wiring import build_bridge

    shard = Shard(1, 2)
    mine = [a for a in AVATARS if shard.owns(a)]
    theirs = [a for a in AVATARS if not shard.owns(a)]
    text = (f"avatars: {{ids: [{mine[0]}, {theirs[0]}], shard: '1/2'}}\n"
            "inputs: [{type: mqtt}]\noutputs:\n"
            f"  - {{type: vmc, port: 39539, avatar: {mine[1]}}}\n"
            f"  - {{type: vmc, port: 39540, avatar: {theirs[1]}}}\n")
    bridge = build_bridge(parse_config(text, str(tmp_path / "shard.yaml")))
    try:
        topics = set(bridge.sources[0].topics)  # type: ignore[attr-defined]
        assert topics == {f"vadbridge/{a}/{leaf}" for a in (mine[0], mine[1])
                          for leaf in ("vad", "emotion")}
    finally:
        for sink in bridge.sinks:
            sink.close()
