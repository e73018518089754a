from vadbridge.daemon import format_stats_line


def snapshot(send_errors: dict[str, int]) -> dict[str, object]:
    return {
        "frames": 600, "late": 2, "skipped": 1, "avatars": 3,
        "inputs": {"accepted": {"osc": 12, "mqtt": 0}, "rejected": {"mqtt.json": 2},
                   "clipped": {}},
        "send_errors": send_errors,
    }


def test_stats_line_names_nonzero_counters_only() -> None:
    line = format_stats_line(snapshot({"vmc 127.0.0.1:39539": 0, "livelink 10.0.0.2:11111": 7}),
                             59.96)
    assert line == (
        "stats: 60.0 fps, late 2, skipped 1, avatars 3; inputs accepted osc=12, "
        "rejected mqtt.json=2, clipped 0; send errors livelink 10.0.0.2:11111=7"
    )


def test_stats_line_names_only_the_worst_outputs_of_a_crowd() -> None:
    errors = {f"vmc 127.0.0.1:{port}": port - 39000 for port in range(39001, 39101)}
    line = format_stats_line(snapshot(errors), 60.0, max_outputs=2)
    assert line.endswith("send errors vmc 127.0.0.1:39099=99 vmc 127.0.0.1:39100=100 "
                         "(+98 more outputs)")
