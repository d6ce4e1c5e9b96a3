"""Many stations into one central PostgreSQL (a real throw-away cluster): `station inspect --postgres`
creates the schema, forwards every result with its station id; `station results --central` reads
across stations. Passwords never reach the output."""

from __future__ import annotations

import psycopg
import pytest
import test_live_support as support
from lineio_servers import Postgres

from station.cli.main import main
from station.lineio.central import SCHEMA_VERSION, connect, migrate
from station.live.results_db import query

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def pg():
    server = Postgres()
    server.start()
    yield server
    server.cleanup()


def test_two_stations_forward_into_one_database_and_results_reads_across(pg, tmp_path, capsys):
    recipe = support.teach_demo_recipe(tmp_path / "models" / "demo")
    url = pg.url.replace("station@", "station:pw-xyz@")  # trust authentication: any password; it must not leak
    # line1-b's lamp is dimmed by 10 %: its rows carry the drift watch's warning, which reaches the table too
    for station, frames, light in (("line1-a", 12, 1.0), ("line1-b", 7, 0.9)):
        rc = main(["inspect", "--source", f"synthetic://demo?fps=0&count={frames}&live=0&defect_rate=0.5&light={light}",
                   "--recipe", str(recipe), "--db", str(tmp_path / f"{station}.sqlite"), "--no-archive",
                   "--print", "none", "--stats-every", "0", "--postgres", url, "--station-id", station,
                   "--line-config", str(tmp_path / f"{station}.json"), "--save-line-io"])
        assert rc == 0
    out = capsys.readouterr()
    assert "pw-xyz" not in out.out + out.err and "postgres" in out.err
    assert "pw-xyz" in (tmp_path / "line1-a.json").read_text()  # kept (mode 0600) for the next run
    with psycopg.connect(pg.url) as conn:
        rows = conn.execute("SELECT station_id, sequence, id, verdict, warning FROM results "
                            "ORDER BY station_id, sequence")
        central = [tuple(r) for r in rows]
        assert conn.execute("SELECT version FROM station_schema").fetchone()[0] == SCHEMA_VERSION
    for station in ("line1-a", "line1-b"):
        local = [(station, r["id"], f"{station}-{r['id']}", r["verdict"], r["warning"])
                 for r in query(tmp_path / f"{station}.sqlite")]
        assert [c for c in central if c[0] == station] == local
    assert any(c[4] for c in central if c[0] == "line1-b") and not any(c[4] for c in central if c[0] == "line1-a")
    assert main(["results", "summary", "--central", url]) == 0
    text = capsys.readouterr().out
    assert "19 inspection(s) from 2 station(s)" in text and "line1-a: 12" in text and "line1-b: 7" in text
    assert main(["results", "show", "--central", url, "--station", "line1-b", "--last", "3"]) == 0
    shown = capsys.readouterr().out.strip().splitlines()
    assert len(shown) == 3 and all("line1-b" in s for s in shown)
    assert main(["results", "export", "--central", url, "--verdict", "NG", "--csv", str(tmp_path / "ng.csv")]) == 0
    ng = sum(1 for c in central if c[3] == "NG")
    assert len((tmp_path / "ng.csv").read_text().splitlines()) == ng + 1


def test_migration_is_idempotent_and_refuses_a_newer_schema(pg):
    conn = connect(pg.url)
    try:
        conn.autocommit = True
        conn.execute("DROP DATABASE IF EXISTS mig")
        conn.execute("CREATE DATABASE mig")
    finally:
        conn.close()
    url = pg.url.rsplit("/", 1)[0] + "/mig"
    with psycopg.connect(url) as c:
        assert migrate(c) == 0 and migrate(c) == SCHEMA_VERSION
        c.execute("UPDATE station_schema SET version = %s", (SCHEMA_VERSION + 1,))
        c.commit()
        from station.lineio.central import CentralError

        with pytest.raises(CentralError, match="update the station"):
            migrate(c)


def test_an_unreachable_central_database_is_one_line(tmp_path, capsys):
    assert main(["results", "summary", "--central", "postgresql://u:secret@127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot connect to postgresql://u:***@127.0.0.1:1/x") and "secret" not in err
    assert len(err.splitlines()) == 1


def test_station_inspect_in_trigger_mode_answers_a_plc_over_modbus(tmp_path, capsys):
    import threading
    import time

    from lineio_servers import free_port
    from pymodbus.client import ModbusTcpClient

    recipe = support.teach_demo_recipe(tmp_path / "models" / "demo")
    port, rc = free_port(), []
    args = ["inspect", "--source", "synthetic://demo?fps=30", "--recipe", str(recipe), "--db",
            str(tmp_path / "r.sqlite"), "--no-archive", "--print", "none", "--stats-every", "0", "--frames", "2",
            "--trigger", "--modbus", f"modbus://127.0.0.1:{port}", "--line-config", str(tmp_path / "l.json")]
    cli = threading.Thread(target=lambda: rc.append(main(args)), daemon=True)
    cli.start()
    plc = ModbusTcpClient("127.0.0.1", port=port)
    deadline = time.monotonic() + 60
    while not plc.connect() and time.monotonic() < deadline:
        time.sleep(0.2)
    from pymodbus.exceptions import ConnectionException

    for trigger in (11, 12):
        plc.write_registers(100, [0, trigger], device_id=1)
        plc.write_coil(0, True, device_id=1)
        try:
            while plc.read_coils(0, count=1, device_id=1).bits[0] and time.monotonic() < deadline:
                time.sleep(0.02)
        except ConnectionException:  # after the last frame (--frames 2) the station ends, and its server
            assert trigger == 12
    plc.close()
    cli.join(30)
    assert rc == [0]
    assert [(r["frame_id"] >= 0, r["trigger_id"]) for r in query(tmp_path / "r.sqlite")] == [(True, "11"), (True, "12")]
