"""The station's OPC UA and Modbus TCP servers, driven by asyncua's and pymodbus's own clients, with
the live pipeline in trigger mode: one frame per trigger, the result carries the trigger id;
security (no anonymous client when a password is set, a wrong password refused and audited)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import test_live_support as support
from lineio_servers import free_port

from station.acquisition.base import SourceError, SourceState, open_source
from station.core.recipe import load_recipe
from station.lineio.config import LineConfig
from station.lineio.control import TriggerError
from station.lineio.hub import LineIO
from station.live.pipeline import LivePipeline
from station.live.results_db import ResultsLog, query

pytestmark = pytest.mark.timeout(180)
PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def demo_recipe(tmp_path_factory):
    return load_recipe(support.teach_demo_recipe(tmp_path_factory.mktemp("models") / "demo"))


@pytest.fixture(scope="module")
def station(demo_recipe, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("line")
    opc_port, mb_port = free_port(), free_port()
    refused: list[str] = []
    config = LineConfig(station_id="st7", opcua=f"opc.tcp://plc:{PASSWORD}@127.0.0.1:{opc_port}",
                        modbus=f"modbus://127.0.0.1:{mb_port}", trigger_mode=True, trigger_timeout_s=3.0)
    db_path = tmp / "results.sqlite"
    results = ResultsLog(db_path, durability="normal")
    line = LineIO(config, db_path, cert_dir=tmp / "pki", record=results.record, on_auth_failure=refused.append,
                  recipe=(demo_recipe.name, demo_recipe.version))
    pipe = LivePipeline(line.wrap_source(open_source("synthetic://demo?fps=30")), demo_recipe, results=results,
                        on_result=line.on_result)
    from station.cli.lineio_options import recipe_selector

    line.control.recipe_selector = recipe_selector(pipe, demo_recipe.path.parent.parent, None, line.control)
    line.start()
    pipe.start()
    yield {"line": line, "db": db_path, "refused": refused, "opc": f"opc.tcp://127.0.0.1:{opc_port}/",
           "modbus": mb_port, "cert": tmp / "pki" / "station-opcua-cert.der", "tmp": tmp, "pipe": pipe}
    pipe.stop()
    line.stop()
    results.close()


def _row(db, sequence):
    return next(r for r in query(db) if r["id"] == sequence)


async def _client(st, user=None, password=None):
    from asyncua import Client, ua
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key, cert = st["tmp"] / "client-key.pem", st["tmp"] / "client-cert.der"
    await setup_self_signed_certificate(key, cert, "urn:test:plc", socket.gethostname(),
                                        [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "test plc"})
    client = Client(st["opc"], timeout=10)
    client.application_uri = "urn:test:plc"
    await client.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key), server_certificate=str(st["cert"]),
                              mode=ua.MessageSecurityMode.SignAndEncrypt)
    if user is not None:
        client.set_user(user)
        client.set_password(password)
    return client


async def _node(client, *path):
    ns = await client.get_namespace_index("urn:inspection-station:vision")
    return await client.nodes.objects.get_child([f"{ns}:InspectionStation", *[f"{ns}:{p}" for p in path]])


def test_opcua_refuses_anonymous_and_wrong_password_and_audits(station):
    async def attempt(user, password):
        client = await _client(station, user, password)
        with pytest.raises(Exception) as info:
            await client.connect()
        return str(info.value)

    before = len(station["refused"])
    assert "Bad" in asyncio.run(attempt(None, None))  # anonymous: no such identity token on the endpoint
    assert "BadUserAccessDenied" in asyncio.run(attempt("plc", "wrong"))
    assert "plc" in station["refused"][before:]
    assert all(PASSWORD not in u and "wrong" not in u for u in station["refused"])


def test_opcua_trigger_returns_the_result_of_exactly_one_frame(station):
    async def run():
        client = await _client(station, "plc", PASSWORD)
        async with client:
            state = await _node(client, "SystemState", "CurrentState")
            assert await state.read_value() == "Ready"
            root = await _node(client)
            ns = await client.get_namespace_index("urn:inspection-station:vision")
            seq, verdict, score, n_regions, area, error = await root.call_method(f"{ns}:Trigger", "T-100")
            last_trigger = await (await _node(client, "ResultManagement", "LastResult", "TriggerId")).read_value()
            await root.call_method(f"{ns}:Stop")
            halted = await state.read_value()
            with pytest.raises(Exception, match="BadInvalidState"):
                await root.call_method(f"{ns}:Trigger", "T-101")
            await root.call_method(f"{ns}:Start")
            total = await (await _node(client, "Counters", "Total")).read_value()
            return seq, verdict, score, n_regions, error, last_trigger, halted, total

    before = len(list(query(station["db"])))
    seq, verdict, score, n_regions, error, last_trigger, halted, total = asyncio.run(run())
    row = _row(station["db"], seq)
    assert row["trigger_id"] == "T-100" and row["verdict"] == verdict and verdict in ("OK", "NG")
    assert row["score"] == pytest.approx(score) and row["n_regions"] == n_regions and error == ""
    assert last_trigger == "T-100" and halted == "Halted" and total >= 1
    time.sleep(0.5)  # the free-running camera keeps delivering: none of its frames is inspected untriggered
    assert len(list(query(station["db"]))) == before + 1


def test_opcua_select_recipe_switches_the_recipe_inspected_with(station):
    async def run():
        client = await _client(station, "plc", PASSWORD)
        async with client:
            ns = await client.get_namespace_index("urn:inspection-station:vision")
            recipes = await _node(client, "RecipeManagement")
            label = await recipes.call_method(f"{ns}:SelectRecipe", "demo")
            with pytest.raises(Exception, match="BadInvalidArgument"):
                await recipes.call_method(f"{ns}:SelectRecipe", "no-such-part")
            current = await (await _node(client, "RecipeManagement", "CurrentRecipe")).read_value()
            root = await _node(client)
            seq = (await root.call_method(f"{ns}:Trigger", "after-select"))[0]
            return label, current, seq

    label, current, seq = asyncio.run(run())
    assert label.startswith("demo") and current == "demo"
    assert _row(station["db"], seq)["recipe"] == "demo"


def test_modbus_coil_triggers_one_inspection_and_registers_follow(station):
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient("127.0.0.1", port=station["modbus"])
    assert client.connect()
    try:
        assert client.read_holding_registers(0, count=1, device_id=1).registers[0] == 1  # Ready
        client.write_registers(100, [0, 4711], device_id=1)  # the PLC's id for the next trigger
        client.write_coil(0, True, device_id=1)
        deadline = time.monotonic() + 10
        while client.read_coils(0, count=1, device_id=1).bits[0] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not client.read_coils(0, count=1, device_id=1).bits[0], "the station clears coil 0 with the result"
        regs = client.read_holding_registers(0, count=19, device_id=1).registers
        seq = (regs[2] << 16) | regs[3]
        row = _row(station["db"], seq)
        assert row["trigger_id"] == "4711" and ((regs[4] << 16) | regs[5]) == 4711
        assert regs[1] == {"OK": 1, "NG": 2, "ERROR": 3}[row["verdict"]]
        assert client.read_input_registers(0, count=19, device_id=1).registers == regs
        assert client.write_register(5, 9, device_id=1).isError()  # status registers are read-only
    finally:
        client.close()


class DeadCamera:
    """A camera that never delivers a frame (a trigger cable cut, a hung driver)."""

    uri, live, state = "test://dead", True, SourceState.CLOSED

    def open(self):
        self.state = SourceState.CONNECTED

    def start(self):
        self.state = SourceState.ACQUIRING

    def next_frame(self, timeout=1.0):
        time.sleep(min(timeout, 0.05))
        return None

    def stop(self):
        pass

    def close(self):
        self.state = SourceState.CLOSED


def test_a_trigger_whose_frame_never_comes_times_out_with_the_configured_verdict(demo_recipe, tmp_path):
    config = LineConfig(station_id="st8", trigger_mode=True, trigger_timeout_s=0.5, trigger_timeout_verdict="NG")
    results = ResultsLog(tmp_path / "r.sqlite", durability="normal")
    line = LineIO(config, tmp_path / "r.sqlite", cert_dir=tmp_path, record=results.record)
    pipe = LivePipeline(line.wrap_source(DeadCamera()), demo_recipe, results=results, on_result=line.on_result)
    pipe.start()
    try:
        t0 = time.monotonic()
        outcome = line.control.trigger("late-1").wait()
        assert time.monotonic() - t0 < 5.0  # answered, never a hang
        assert outcome.verdict == "NG" and "no frame within 0.5 s" in outcome.error
        row = _row(tmp_path / "r.sqlite", outcome.sequence)
        assert row["verdict"] == "NG" and row["trigger_id"] == "late-1" and "no frame" in row["error"]
    finally:
        pipe.stop()
        results.close()
    with pytest.raises(TriggerError, match="trigger mode is off"):
        LineIO(LineConfig(), tmp_path / "r.sqlite", cert_dir=tmp_path).control.trigger("x")


def test_camera_trigger_on_a_camera_without_one_says_not_available():
    from station.acquisition.genicam import GenICamSource
    from station.acquisition.gentl import simulated_producer

    if simulated_producer() is None:
        pytest.skip("viky.cti (genicam package) not installed")
    line = LineIO(LineConfig(trigger_mode=True), "/nonexistent/r.sqlite", cert_dir="/tmp")
    source = line.wrap_source(GenICamSource(trigger="software"))
    assert source.camera_trigger
    try:
        with pytest.raises(SourceError, match="camera trigger not available"):
            source.open()
    finally:
        source.close()
