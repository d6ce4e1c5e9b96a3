"""The Line I/O page: outputs switched on with address and credentials, applied (saved, audited with
the password redacted), and their status lights; the links in the status bar."""

from __future__ import annotations

import time

import pytest
from lineio_servers import free_port

from station.app.audit import AuditLog
from station.app.line_service import LineService

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]


def test_page_applies_outputs_and_shows_their_status(qtbot, tmp_path):
    from station.gui.lineio_page import LineIOPage

    audit = AuditLog(tmp_path / "audit.jsonl")
    service = LineService(tmp_path, tmp_path / "results.sqlite", audit)
    page = LineIOPage(service)
    qtbot.addWidget(page)
    port, dead = free_port(), free_port()
    page.rows["modbus"].enabled.setChecked(True)
    page.rows["modbus"].address.setText(f"modbus://127.0.0.1:{port}")
    page.rows["mqtt"].enabled.setChecked(True)
    page.rows["mqtt"].address.setText(f"mqtt://127.0.0.1:{dead}/line1/st3")  # nobody listens: the link is down
    page.rows["mqtt"].user.setText("station")
    page.rows["mqtt"].password.setText("pw-secret-1")
    page.station_id.setText("st3")
    try:
        assert page.apply(), page.message.text()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            page.refresh()
            states = {s.name: s.state for s in service.status()}
            if states["modbus"] == "listening" and states["mqtt"] == "down":
                break
            qtbot.wait(100)
        assert states == {"mqtt": "down", "postgres": "off", "opcua": "off", "modbus": "listening"}
        assert "listening" in page.rows["modbus"].light.text()
        assert "last error" in page.rows["mqtt"].detail.text() and "pw-secret-1" not in page.rows["mqtt"].detail.text()
        assert "modbus ●" in page.status_label.text() and "mqtt ○" in page.status_label.text()
        assert "pw-secret-1" in (tmp_path / "lineio.json").read_text()  # kept for the next start, mode 0600
        text = (tmp_path / "audit.jsonl").read_text()
        assert "lineio.settings" in text and "pw-secret-1" not in text and "station:***@" in text
        reloaded = LineService(tmp_path, tmp_path / "results.sqlite")
        assert reloaded.config.mqtt.endswith(f"@127.0.0.1:{dead}/line1/st3") and reloaded.config.station_id == "st3"
        page.station_id.setText("bad id/with slash")
        assert not page.apply() and "station id" in page.message.text()
    finally:
        service.stop()


def test_a_refused_opcua_login_is_audited_without_the_password(tmp_path):
    import asyncio

    from asyncua import Client

    from station.lineio.config import LineConfig, save_line_config

    port = free_port()
    save_line_config(LineConfig(opcua=f"opc.tcp://plc:right-pw-7@127.0.0.1:{port}?security=both"),
                     tmp_path / "lineio.json")
    audit = AuditLog(tmp_path / "audit.jsonl")
    service = LineService(tmp_path, tmp_path / "results.sqlite", audit)
    service.start()
    try:
        async def attempt():
            client = Client(f"opc.tcp://127.0.0.1:{port}/", timeout=10)
            client.set_user("plc")
            client.set_password("wrong-pw-8")
            with pytest.raises(Exception, match="BadUserAccessDenied"):
                await client.connect()

        asyncio.run(attempt())
    finally:
        service.stop()
    entries, _ = audit.entries()
    refused = [e for e in entries if e.action == "opcua.login_refused"]
    assert refused and refused[0].target == "OPC UA user plc"
    text = (tmp_path / "audit.jsonl").read_text()
    assert "wrong-pw-8" not in text and "right-pw-7" not in text


def test_the_window_serves_its_own_results_to_a_plc(qtbot, ctx):
    from helpers_detector import register_test_detector
    from pymodbus.client import ModbusTcpClient

    from station.gui.main_window import MainWindow
    from station.lineio.config import LineConfig, save_line_config

    register_test_detector()
    port = free_port()
    save_line_config(LineConfig(station_id="win1", modbus=f"modbus://127.0.0.1:{port}"), ctx.paths.home / "lineio.json")
    w = MainWindow(ctx, source="synthetic://demo?fps=30&defect_rate=0.3")
    qtbot.addWidget(w)
    w.show()
    try:
        qtbot.waitUntil(lambda: w.line.line is not None and w.line.status()[3].state == "listening", timeout=30000)
        assert w.tabs.tabText(3) == "Line I/O" and w.line_stack.currentIndex() == 0  # locked for operators
        plc = ModbusTcpClient("127.0.0.1", port=port)
        assert plc.connect()

        def counted() -> int:
            r = plc.read_holding_registers(11, count=2, device_id=1).registers
            return (r[0] << 16) | r[1]

        qtbot.waitUntil(lambda: counted() >= 5, timeout=30000)  # the parts the window inspected
        assert plc.read_holding_registers(0, count=1, device_id=1).registers[0] == 3  # ContinuousExecution
        plc.close()
        qtbot.waitUntil(lambda: "modbus ●" in w.line_page.status_label.text(), timeout=5000)
    finally:
        w.close()
