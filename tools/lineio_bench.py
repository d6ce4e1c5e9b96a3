"""Line I/O benchmark (not a test): trigger -> result over OPC UA at a fixed trigger rate with the
variation model, and MQTT verdict -> plant receipt, against a real local mosquitto.

    python tools/lineio_bench.py [--rate 30] [--triggers 300] [--results 300] [--json out.json]

Prints p50/p95 and the machine load; docs/benchmarks.md ("Line I/O") quotes its output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1))))]


def teach(models: Path, detector: str) -> Path:
    from station.app.demo import teach_demo_recipe

    return teach_demo_recipe(models, detector)


def bench_opcua(recipe_dir: Path, rate: float, n: int, tmp: Path) -> dict:
    from asyncua import Client, ua
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from lineio_servers import free_port

    from station.acquisition.base import open_source
    from station.core.recipe import load_recipe
    from station.lineio.config import LineConfig
    from station.lineio.hub import LineIO
    from station.live.pipeline import LivePipeline
    from station.live.results_db import ResultsLog

    recipe = load_recipe(recipe_dir)
    port = free_port()
    config = LineConfig(station_id="bench", opcua=f"opc.tcp://plc:pw@127.0.0.1:{port}", trigger_mode=True,
                        trigger_timeout_s=2.0)
    results = ResultsLog(tmp / "opc.sqlite")
    line = LineIO(config, tmp / "opc.sqlite", cert_dir=tmp / "pki", record=results.record)
    pipe = LivePipeline(line.wrap_source(open_source("synthetic://demo?fps=60")), recipe, results=results,
                        on_result=line.on_result)
    line.start()
    pipe.start()

    async def run() -> tuple[list[float], list[str]]:
        key, cert = tmp / "k.pem", tmp / "c.der"
        await setup_self_signed_certificate(key, cert, "urn:bench", "localhost", [ExtendedKeyUsageOID.CLIENT_AUTH],
                                            {"commonName": "bench"})
        client = Client(f"opc.tcp://127.0.0.1:{port}/", timeout=30)
        client.application_uri = "urn:bench"
        await client.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key),
                                  server_certificate=str(tmp / "pki" / "station-opcua-cert.der"),
                                  mode=ua.MessageSecurityMode.SignAndEncrypt)
        client.set_user("plc")
        client.set_password("pw")
        async with client:
            ns = await client.get_namespace_index("urn:inspection-station:vision")
            root = await client.nodes.objects.get_child([f"{ns}:InspectionStation"])
            times: list[float] = []
            verdicts: list[str] = []

            async def one(i: int) -> None:
                t0 = time.perf_counter()
                try:
                    out = await root.call_method(f"{ns}:Trigger", f"b{i}")
                except Exception as exc:  # noqa: BLE001 - refused (queue full) or failed: counted
                    verdicts.append(f"refused: {type(exc).__name__}")
                    return
                times.append((time.perf_counter() - t0) * 1000.0)
                verdicts.append(out[1])

            for _ in range(10):  # warm-up
                await one(-1 - _)
            times.clear()
            verdicts.clear()
            tasks, start = [], time.perf_counter()
            for i in range(n):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
            return times, verdicts

    try:
        t_start = time.perf_counter()
        times, verdicts = asyncio.run(run())
        wall = time.perf_counter() - t_start
        stats = pipe.stats()
    finally:
        pipe.stop()
        line.stop()
        results.close()
    return {"triggers": n, "rate_per_s": rate, "answered": len(times), "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(pct(times, 95), 1), "max_ms": round(max(times), 1),
            "error_verdicts": sum(v == "ERROR" for v in verdicts),
            "refused": sum(v.startswith("refused") for v in verdicts),
            "inspect_p50_ms": round(stats.inspect_p50_ms or 0.0, 1), "inspect_p95_ms": round(stats.inspect_p95_ms or 0.0, 1),
            "wall_s_incl_setup": round(wall, 1), "detector": recipe.detector_kind}


def bench_mqtt(recipe_dir: Path, n: int, tmp: Path) -> dict:
    import paho.mqtt.client as mqtt
    from lineio_servers import Mosquitto

    from station.acquisition.base import open_source
    from station.core.recipe import load_recipe
    from station.lineio.config import LineConfig
    from station.lineio.hub import LineIO
    from station.live.pipeline import LivePipeline
    from station.live.results_db import ResultsLog

    broker = Mosquitto(tmp / "mq")
    broker.start()
    verdict_at: dict[str, float] = {}
    delays: list[float] = []
    done = threading.Event()
    try:
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

        def on_message(_c, _u, m):
            msg = json.loads(m.payload)
            t = verdict_at.get(msg["id"])
            if t is not None:
                delays.append((time.time() - t) * 1000.0)
            if len(delays) >= n:
                done.set()

        sub.on_message = on_message
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe("line/bench/result", qos=1)
        sub.loop_start()
        results = ResultsLog(tmp / "mq.sqlite")
        line = LineIO(LineConfig(station_id="bench", mqtt=f"mqtt://127.0.0.1:{broker.port}/line/bench"),
                      tmp / "mq.sqlite", cert_dir=tmp / "pki", record=results.record)

        def on_result(live):
            verdict_at[f"bench-{live.row_id}"] = time.time()  # the row is committed: the outbox has it
            line.on_result(live)

        pipe = LivePipeline(open_source(f"synthetic://demo?fps=30&count={n}"), load_recipe(recipe_dir),
                            results=results, on_result=on_result)
        line.start()
        pipe.start()
        pipe.wait(120)
        done.wait(30)
        pipe.stop()
        line.stop()
        results.close()
        sub.loop_stop()
    finally:
        broker.stop()
    return {"results": len(delays), "p50_ms": round(statistics.median(delays), 1),
            "p95_ms": round(pct(delays, 95), 1), "max_ms": round(max(delays), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--triggers", type=int, default=300)
    ap.add_argument("--results", type=int, default=300)
    ap.add_argument("--detector", default="variation")
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lineio-bench-"))
    os.environ.setdefault("STATION_HOME", str(tmp / "home"))
    t0 = time.time()
    recipe = teach(tmp / "models", args.detector)
    load_before = os.getloadavg()
    report = {"opcua_trigger": bench_opcua(recipe, args.rate, args.triggers, tmp),
              "mqtt_verdict_to_receive": bench_mqtt(recipe, args.results, tmp),
              "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
              "cpus": os.cpu_count(), "seconds": round(time.time() - t0, 1)}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
