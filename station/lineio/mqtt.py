"""MQTT (paho-mqtt 2.x): one JSON message per part, QoS 1, and a retained station status with a last will.

``mqtt://[user:password@]broker:1883/line1/station2`` publishes

- every result on ``line1/station2/result`` (``?topic=`` names another), payload: the schema-1
  message of ``docs/result-schema.json``;
- the station's status, retained, on ``line1/station2/status`` (``?status_topic=``): ``online`` when
  connected; the broker publishes the last will ``offline`` if the station vanishes.

``mqtts://`` (or ``?tls=1``) connects with TLS: ``ca=`` CA file (default: the system's), ``cert=`` and
``key=`` for a client certificate, ``insecure=1`` to skip the host-name check (test benches only).

A message counts as delivered when the broker has acknowledged it (PUBACK); only then does the cursor
move. paho's own reconnect and re-send are off: after a failure the forwarder reconnects with a
clean session and re-sends from its cursor, which keeps the order.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from station.lineio.config import parse_output, redact
from station.lineio.forwarder import Forwarder, LinkError
from station.lineio.message import encode, result_message, utc_iso

CONNECT_TIMEOUT_S = 5.0
ACK_TIMEOUT_S = 10.0


def topics(url: str, station_id: str) -> tuple[str, str]:
    """(result topic, status topic) for an MQTT output URL."""
    u = parse_output("mqtt", url)
    base = u.path.strip("/") or f"station/{station_id}"
    return u.params.get("topic", f"{base}/result"), u.params.get("status_topic", f"{base}/status")


def make_client(url: str, client_id: str) -> tuple[Any, Any]:
    """A configured (not yet connected) paho client for ``url`` and the parsed URL."""
    import paho.mqtt.client as mqtt

    u = parse_output("mqtt", url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                         reconnect_on_failure=False)
    if u.username:
        client.username_pw_set(u.username, u.password or None)
    if u.scheme == "mqtts" or u.params.get("tls", "0") in ("1", "true", "yes"):
        client.tls_set(ca_certs=u.params.get("ca") or None, certfile=u.params.get("cert") or None,
                       keyfile=u.params.get("key") or None)
        if u.params.get("insecure", "0") in ("1", "true", "yes"):
            client.tls_insecure_set(True)
    return client, u


class MqttForwarder(Forwarder):
    kind = "mqtt"

    def __init__(self, url: str, db_path: Any, station_id: str, **kwargs: Any) -> None:
        u = parse_output("mqtt", url)
        super().__init__(db_path, station_id, redact(url), **kwargs)
        self.url = url
        self.keepalive = int(u.params.get("keepalive", "15"))
        self.result_topic, self.status_topic = topics(url, station_id)
        self._client: Any = None
        self._connected_event = threading.Event()
        self._connect_reason = ""
        self._lost = threading.Event()

    def _status_payload(self, state: str) -> bytes:
        return json.dumps({"station_id": self.station_id, "state": state, "time": utc_iso(time.time()),
                           "result_topic": self.result_topic}).encode()

    def connect(self) -> None:
        client, u = make_client(self.url, f"station-{self.station_id}")
        client.will_set(self.status_topic, self._status_payload("offline"), qos=1, retain=True)
        client.max_inflight_messages_set(max(20, self.batch))
        self._connected_event.clear()
        self._lost.clear()

        def on_connect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
            self._connect_reason = "" if not reason.is_failure else str(reason)
            self._connected_event.set()

        def on_disconnect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
            self._lost.set()
            self._connected_event.set()

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        try:
            client.connect(u.host, u.port, keepalive=self.keepalive)
        except (OSError, ValueError) as exc:
            raise LinkError(f"cannot connect to {u.host}:{u.port} ({exc})") from None
        client.loop_start()
        self._client = client
        if not self._connected_event.wait(CONNECT_TIMEOUT_S) or self._lost.is_set() or self._connect_reason:
            reason = self._connect_reason or ("connection closed" if self._lost.is_set() else "no answer")
            raise LinkError(f"broker {u.host}:{u.port} refused the connection: {reason}")
        info = client.publish(self.status_topic, self._status_payload("online"), qos=1, retain=True)
        self._wait([info])

    def _wait(self, infos: list[Any]) -> None:
        deadline = time.monotonic() + ACK_TIMEOUT_S
        for info in infos:
            try:
                info.wait_for_publish(max(0.01, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:
                raise LinkError(f"not accepted by the broker ({exc})") from None
            if not info.is_published():
                raise LinkError("connection lost" if self._lost.is_set() else
                                f"the broker did not acknowledge within {ACK_TIMEOUT_S:.0f} s")

    def send(self, rows: list[dict[str, Any]]) -> None:
        if self._lost.is_set():
            raise LinkError("connection lost")
        infos = [self._client.publish(self.result_topic, encode(result_message(self.station_id, r)), qos=1)
                 for r in rows]
        self._wait(infos)

    def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if not self._lost.is_set():  # a clean goodbye: say offline ourselves (the will is for a crash)
                client.publish(self.status_topic, self._status_payload("offline"), qos=1, retain=True) \
                    .wait_for_publish(1.0)
            client.disconnect()
        except Exception:  # noqa: BLE001 - the link is going anyway
            pass
        finally:
            client.loop_stop()
