"""The outbox (cursors in the local results log), the configuration (no password ever shown), and the
MQTT forwarder's log-in, retained status and last will against a real mosquitto."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from lineio_servers import Mosquitto

from station.lineio.config import LineConfig, LineConfigError, load_line_config, redact, save_line_config
from station.lineio.message import result_message
from station.lineio.mqtt import MqttForwarder
from station.lineio.outbox import Outbox, cursors
from station.live.results_db import ResultRow, ResultsLog

pytestmark = pytest.mark.timeout(120)


def _log(path, n, start=0):
    with ResultsLog(path, durability="normal") as db:
        for i in range(n):
            db.record(ResultRow(time=1_700_000_000.0 + start + i, source="synthetic://demo", frame_id=start + i,
                                verdict="NG" if i % 5 == 0 else "OK", recipe="demo", recipe_version=1, score=0.5,
                                threshold=1.0, regions=[{"area_px": 42.0, "bbox": [1, 2, 3, 4], "peak_score": 2.5}],
                                trigger_id=f"t{i}"))


def test_cursor_survives_a_restart_and_only_moves_when_delivered(tmp_path):
    db = tmp_path / "r.sqlite"
    _log(db, 10)
    box = Outbox(db, "mqtt broker/a", start_at="start")
    rows = box.pending(4)
    assert [r["id"] for r in rows] == [1, 2, 3, 4] and rows[0]["regions"][0]["area_px"] == 42.0
    assert [r["id"] for r in box.pending(4)] == [1, 2, 3, 4]  # not delivered: the same rows again
    box.delivered(4)
    box.close()
    again = Outbox(db, "mqtt broker/a", start_at="start")  # a restarted station
    assert [r["id"] for r in again.pending(100)] == list(range(5, 11))
    assert again.backlog().pending == 6
    assert {c["name"]: c["pending"] for c in cursors(db)} == {"mqtt broker/a": 6}
    late = Outbox(db, "postgres central", start_at="now")  # a new output starts with the next result
    assert late.pending() == []


def test_the_backlog_is_bounded_loudly(tmp_path, caplog):
    db = tmp_path / "r.sqlite"
    _log(db, 30)
    box = Outbox(db, "mqtt x", max_backlog=10, start_at="start")
    with caplog.at_level(logging.WARNING):
        rows = box.pending(100)
    assert [r["id"] for r in rows] == list(range(21, 31))
    assert box.backlog().skipped == 20
    assert "over the backlog bound of 10" in caplog.text and "skipped" in caplog.text


def test_message_follows_the_documented_schema(tmp_path):
    _log(tmp_path / "r.sqlite", 1)
    row = Outbox(tmp_path / "r.sqlite", "x", start_at="start").pending()[0]
    msg = result_message("st1", row)
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "result-schema.json").read_text())
    assert set(schema["required"]) <= set(msg)
    assert msg["id"] == "st1-1" and msg["schema"] == schema["properties"]["schema"]["const"]
    assert msg["regions"] == [{"area_px": 42.0, "bbox": [1, 2, 3, 4], "peak": 2.5}]
    assert msg["trigger_id"] == "t0" and msg["recipe"] == {"name": "demo", "version": 1}
    assert msg["time"].endswith("Z")


def test_config_keeps_passwords_out_of_sight(tmp_path):
    url = "mqtt://plant:top%40secret@broker:1883/line1/st2?ca=/etc/ca.pem"
    assert "secret" not in redact(url) and redact(url).startswith("mqtt://plant:***@broker:1883/line1/st2")
    assert "hunter2" not in redact("postgresql://u@db/x?password=hunter2")
    config = LineConfig(station_id="st2", mqtt=url)
    save_line_config(config, tmp_path / "lineio.json")
    assert (tmp_path / "lineio.json").stat().st_mode & 0o077 == 0  # the owner's only
    loaded, problems = load_line_config(tmp_path / "lineio.json")
    assert loaded.mqtt == url and problems == []
    with pytest.raises(LineConfigError, match="not a mqtt address") as info:
        LineConfig(mqtt="http://u:pw@broker").validate()
    assert "pw" not in str(info.value).replace("expected", "")
    (tmp_path / "bad.json").write_text("{not json")
    assert load_line_config(tmp_path / "bad.json")[0].active() == {}


def test_mqtt_logs_in_publishes_retained_status_and_leaves_a_last_will(tmp_path, caplog):
    broker = Mosquitto(tmp_path / "mq", user="station", password="pw-123")
    broker.start()
    try:
        db = tmp_path / "r.sqlite"
        _log(db, 5)
        wrong = MqttForwarder(f"mqtt://station:nope@127.0.0.1:{broker.port}/l1/s9", db, "s9", start_at="start")
        with caplog.at_level(logging.WARNING):
            wrong.start()
            deadline = time.monotonic() + 10
            while wrong.status().state != "down" and time.monotonic() < deadline:
                time.sleep(0.05)
            wrong.stop(0)
        assert "refused" in wrong.status().last_error and "nope" not in caplog.text
        fwd = MqttForwarder(f"mqtt://station:pw-123@127.0.0.1:{broker.port}/l1/s9", db, "s9", start_at="start")
        fwd.start()
        assert fwd.wait_idle(10) and fwd.status().state == "up" and fwd.status().delivered == 5
        got: dict[str, list] = {}
        done = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.username_pw_set("station", "pw-123")

        def on_message(_c, _u, m):
            got.setdefault(m.topic, []).append(json.loads(m.payload))
            done.set()

        c.on_message = on_message
        c.connect("127.0.0.1", broker.port)
        c.subscribe("l1/s9/status", qos=1)
        c.loop_start()
        assert done.wait(5)
        assert got["l1/s9/status"][-1]["state"] == "online"  # retained: a late subscriber sees it
        done.clear()
        fwd._client.socket().close()  # the station vanishes without a goodbye (a crash, a cut cable)
        deadline = time.monotonic() + 40  # the broker sends the will after 1.5 x keepalive
        while got["l1/s9/status"][-1]["state"] != "offline" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert got["l1/s9/status"][-1]["state"] == "offline"
        c.loop_stop()
        fwd.stop(0)
    finally:
        broker.stop()
    assert "pw-123" not in caplog.text


def test_selftest_checks_every_configured_output(tmp_path):
    from lineio_servers import free_port

    from station.cli.selftest import run_checks

    broker = Mosquitto(tmp_path / "mq2")
    broker.start()
    try:
        db = tmp_path / "r.sqlite"
        _log(db, 1500)
        Outbox(db, "mqtt old-broker", start_at="start").close()  # a forwarder that never delivered
        cfg = LineConfig(station_id="s1", mqtt=f"mqtt://u:pw-9@127.0.0.1:{broker.port}/l/s1",
                         postgres="postgresql://u:pw-9@127.0.0.1:1/x", modbus=f"modbus://127.0.0.1:{free_port()}",
                         opcua=f"opc.tcp://127.0.0.1:{free_port()}")
        save_line_config(cfg, tmp_path / "lineio.json")
        skip = {"qt", "synthetic", "detectors", "camera", "onnxruntime", "device", "weights"}
        results = {r.name: r for r in run_checks(skip=skip, line_config=tmp_path / "lineio.json", results_db=db)}
    finally:
        broker.stop()
    assert results["line:mqtt"].status == "pass" and "l/s1/result" in results["line:mqtt"].detail
    assert results["line:postgres"].status == "fail" and "cannot connect" in results["line:postgres"].detail
    assert results["line:modbus"].status == "pass"
    assert results["line:opcua"].status == "fail" and "anonymous" in results["line:opcua"].detail
    assert results["line:backlog"].status == "warn" and "1500 waiting" in results["line:backlog"].detail
    assert all("pw-9" not in r.detail for r in results.values())


def test_mqtt_over_tls_with_the_plant_ca(tmp_path):
    broker = Mosquitto(tmp_path / "mqtls", tls=True)
    broker.start()
    try:
        db = tmp_path / "r.sqlite"
        _log(db, 3)
        untrusted = MqttForwarder(f"mqtts://127.0.0.1:{broker.port}/l/tls", db, "t1", start_at="start")
        untrusted.start()  # the system CAs do not know the plant's CA: refused, never sent in clear
        deadline = time.monotonic() + 10
        while untrusted.status().state != "down" and time.monotonic() < deadline:
            time.sleep(0.05)
        untrusted.stop(0)
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.status().last_error or "certificate" in \
            untrusted.status().last_error.lower()
        fwd = MqttForwarder(f"mqtts://127.0.0.1:{broker.port}/l/tls?ca={broker.ca}", db, "t1", start_at="start")
        fwd.start()
        assert fwd.wait_idle(10) and fwd.status().delivered == 3, fwd.status()
        fwd.stop(1)
    finally:
        broker.stop()
