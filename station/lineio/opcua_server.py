"""The OPC UA server (asyncua), modelled on OPC 40100-1 (OPC UA for Machine Vision) where it fits.

Address space, under ``Objects/InspectionStation`` (namespace ``urn:inspection-station:vision``)::

    StationId
    SystemState/     CurrentState (Halted, Ready, SingleExecution, ContinuousExecution, Error), CurrentStateCode
    RecipeManagement/ CurrentRecipe, CurrentRecipeVersion, SelectRecipe(Name) -> Label
    ResultManagement/LastResult/ Sequence, Verdict, Score, RegionCount, LargestArea, Time, TriggerId, Error,
                     Warning (the drift watch's warning, empty when none)
    Counters/        Total, OK, NG, Error, Since, ResetCounters()
    Start(), Stop(), Trigger(TriggerId) -> Sequence, Verdict, Score, RegionCount, LargestArea, Error

Security: the endpoint offers Basic256Sha256 sign-and-encrypt with the station's own certificate
(generated once into ``cert_dir``); ``?security=none`` adds an unsecured endpoint. Clients log in with
the user and password of the URL (``opc.tcp://plc:secret@0.0.0.0:4840``); anonymous clients are
refused unless ``?anonymous=1`` says otherwise. A wrong password is refused and reported through
``on_auth_failure(user)`` (the station's audit log), the password itself never.

The server runs its own asyncio loop on its own thread; Trigger waits for the result in an executor,
so the loop keeps serving other clients.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from station.lineio.config import LineConfigError, parse_output, redact
from station.lineio.control import MAX_QUEUED_TRIGGERS, STATE_CODES, StationControl, TriggerError
from station.lineio.forwarder import LinkStatus

log = logging.getLogger(__name__)

NAMESPACE = "urn:inspection-station:vision"
START_TIMEOUT_S = 120.0  # the standard address space takes seconds to build; far longer on a loaded PC


class _Users:
    """asyncua's user manager: the configured user, anonymous only when allowed, failures reported."""

    def __init__(self, username: str, password: str, anonymous: bool,
                 on_failure: Callable[[str], None] | None) -> None:
        self.username, self._password, self.anonymous, self.on_failure = username, password, anonymous, on_failure

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> Any:
        from asyncua.crypto.permission_rules import User, UserRole

        if username is None:
            if self.anonymous:
                return User(role=UserRole.User, name="anonymous")
            self._failed("(anonymous)")
            return None
        if self.username and username == self.username and hmac.compare_digest(
                (password or "").encode(), self._password.encode()):
            return User(role=UserRole.User, name=username)
        self._failed(username)
        return None

    def _failed(self, user: str) -> None:
        log.warning("OPC UA: log-in refused for user %r (wrong user or password)", user)
        if self.on_failure is not None:
            try:
                self.on_failure(user)
            except Exception:  # noqa: BLE001 - auditing must not break the server
                log.exception("auditing the refused OPC UA log-in failed")


class OpcUaServer:
    kind = "opcua"

    def __init__(self, url: str, control: StationControl, station_id: str, cert_dir: str | Path,
                 on_auth_failure: Callable[[str], None] | None = None) -> None:
        u = parse_output("opcua", url)
        self.anonymous = u.params.get("anonymous", "0") in ("1", "true", "yes")
        if not u.username and not self.anonymous:
            raise LineConfigError("opcua: give a user and password (opc.tcp://user:password@0.0.0.0:4840) or allow "
                                  "anonymous clients explicitly with ?anonymous=1")
        self.security = u.params.get("security", "sign-encrypt")
        if self.security not in ("sign-encrypt", "none", "both"):
            raise LineConfigError("opcua: security must be sign-encrypt (default), none or both")
        self.endpoint = f"opc.tcp://{u.host}:{u.port}/"
        self.control, self.station_id, self.cert_dir = control, station_id, Path(cert_dir)
        self._users = _Users(u.username, u.password, self.anonymous, on_auth_failure)
        self._status = LinkStatus("opcua", redact(url), state="starting")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop_event: asyncio.Event | None = None
        self._nodes: dict[str, Any] = {}
        # one waiting thread per trigger that can be queued: the loop's default pool (cores + 4) would
        # serialise concurrent Trigger calls
        self._waiters = ThreadPoolExecutor(MAX_QUEUED_TRIGGERS + 2, thread_name_prefix="opcua-trigger")

    @property
    def certificate(self) -> Path:
        return self.cert_dir / "station-opcua-cert.der"

    def status(self) -> LinkStatus:
        return LinkStatus(**self._status.to_dict())

    def start(self) -> None:
        """Start serving; raises if the server cannot listen (port taken, bad certificate)."""
        self._thread = threading.Thread(target=self._run, name="opcua-server", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S) or self._status.state != "listening":
            raise RuntimeError(f"OPC UA server on {self.endpoint}: {self._status.last_error or 'did not start'}")

    def stop(self) -> None:
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        if self._thread is not None:
            self._thread.join(10.0)
        self._waiters.shutdown(wait=False)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as exc:  # noqa: BLE001 - reported as the status, the station goes on
            self._status.state, self._status.last_error = "stopped", f"{type(exc).__name__}: {exc}"
            log.error("OPC UA server on %s: %s", self.endpoint, self._status.last_error)
        finally:
            self._started.set()
            if self._status.state != "stopped":
                self._status.state = "stopped"

    async def _serve(self) -> None:
        from asyncua import Server, ua
        from asyncua.crypto.cert_gen import setup_self_signed_certificate
        from cryptography.x509.oid import ExtendedKeyUsageOID

        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        server = Server(user_manager=self._users)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"Inspection station {self.station_id}")
        app_uri = f"urn:inspection-station:{self.station_id}"
        await server.set_application_uri(app_uri)
        policies = {"sign-encrypt": [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
                    "none": [ua.SecurityPolicyType.NoSecurity],
                    "both": [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt, ua.SecurityPolicyType.NoSecurity]}
        server.set_security_policy(policies[self.security])
        tokens = [ua.UserNameIdentityToken] + ([ua.AnonymousIdentityToken] if self.anonymous else [])
        server.set_identity_tokens(tokens)
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        key = self.cert_dir / "station-opcua-key.pem"
        await setup_self_signed_certificate(key, self.certificate, app_uri, socket.gethostname(),
                                            [ExtendedKeyUsageOID.SERVER_AUTH],
                                            {"commonName": f"station {self.station_id}", "organizationName": "station"})
        key.chmod(0o600)
        await server.load_certificate(str(self.certificate))
        await server.load_private_key(str(key))
        await self._build(server)
        async with server:
            self._status.state = "listening"
            self._started.set()
            self.control.subscribe(self._on_change)
            await self._update(self.control.snapshot())
            log.info("OPC UA server listening on %s (%s)", self.endpoint, self.security)
            await self._stop_event.wait()
        self._status.state = "stopped"

    async def _build(self, server: Any) -> None:
        from asyncua import ua

        idx = await server.register_namespace(NAMESPACE)
        root = await server.nodes.objects.add_object(idx, "InspectionStation")
        n = self._nodes

        async def var(parent: Any, name: str, value: Any, vtype: Any) -> None:
            n[name] = await parent.add_variable(idx, name, ua.Variant(value, vtype))

        await var(root, "StationId", self.station_id, ua.VariantType.String)
        state = await root.add_object(idx, "SystemState")
        await var(state, "CurrentState", "", ua.VariantType.String)
        await var(state, "CurrentStateCode", 0, ua.VariantType.Int32)
        recipes = await root.add_object(idx, "RecipeManagement")
        await var(recipes, "CurrentRecipe", "", ua.VariantType.String)
        await var(recipes, "CurrentRecipeVersion", 0, ua.VariantType.Int32)
        results = await root.add_object(idx, "ResultManagement")
        last = await results.add_object(idx, "LastResult")
        for name, vt in (("Sequence", ua.VariantType.Int64), ("Verdict", ua.VariantType.String),
                         ("Score", ua.VariantType.Double), ("RegionCount", ua.VariantType.Int32),
                         ("LargestArea", ua.VariantType.Double), ("TriggerId", ua.VariantType.String),
                         ("Error", ua.VariantType.String), ("Warning", ua.VariantType.String)):
            await var(last, name, {"String": "", "Double": 0.0}.get(vt.name, 0), vt)
        await var(last, "Time", datetime.fromtimestamp(0, timezone.utc), ua.VariantType.DateTime)
        counters = await root.add_object(idx, "Counters")
        for name in ("Total", "OK", "NG", "Error"):
            n[f"Counters.{name}"] = await counters.add_variable(idx, name, ua.Variant(0, ua.VariantType.Int64))
        await var(counters, "Since", datetime.now(timezone.utc), ua.VariantType.DateTime)

        def arg(name: str, vtype: Any, text: str) -> Any:
            a = ua.Argument()
            a.Name, a.DataType, a.ValueRank, a.Description = name, ua.NodeId(vtype.value), -1, ua.LocalizedText(text)
            return a

        out = [arg("Sequence", ua.VariantType.Int64, "row of the result in the station's log"),
               arg("Verdict", ua.VariantType.String, "OK, NG or ERROR"), arg("Score", ua.VariantType.Double, ""),
               arg("RegionCount", ua.VariantType.Int32, ""), arg("LargestArea", ua.VariantType.Double, "px"),
               arg("Error", ua.VariantType.String, "why ERROR (or NG by time-out)")]
        await root.add_method(idx, "Trigger", self._m_trigger,
                              [arg("TriggerId", ua.VariantType.String, "the PLC's id; empty: the station numbers")], out)
        await root.add_method(idx, "Start", self._m_start, [], [])
        await root.add_method(idx, "Stop", self._m_stop, [], [])
        await counters.add_method(idx, "ResetCounters", self._m_reset, [], [])
        await recipes.add_method(idx, "SelectRecipe", self._m_select,
                                 [arg("Name", ua.VariantType.String, "recipe (part) name")],
                                 [arg("Label", ua.VariantType.String, "the recipe now in use")])

    # --- methods (asyncua passes the parent node id and the input Variants) --------------------------------
    async def _m_trigger(self, _parent: Any, trigger_id: Any = None) -> Any:
        from asyncua import ua

        tid = trigger_id.Value if trigger_id is not None else ""
        try:
            ticket = self.control.trigger(tid or None)
        except TriggerError as exc:  # the client gets the status code, the log the reason
            log.warning("OPC UA Trigger(%r) refused: %s", tid, exc)
            return ua.StatusCode(ua.StatusCodes.BadInvalidState)
        o = await asyncio.get_running_loop().run_in_executor(self._waiters, ticket.wait)
        return [ua.Variant(o.sequence, ua.VariantType.Int64), ua.Variant(o.verdict, ua.VariantType.String),
                ua.Variant(float(o.score), ua.VariantType.Double), ua.Variant(o.n_regions, ua.VariantType.Int32),
                ua.Variant(float(o.largest_area), ua.VariantType.Double), ua.Variant(o.error, ua.VariantType.String)]

    async def _m_start(self, _parent: Any) -> list[Any]:
        self.control.start()
        return []

    async def _m_stop(self, _parent: Any) -> list[Any]:
        self.control.stop()
        return []

    async def _m_reset(self, _parent: Any) -> list[Any]:
        self.control.reset_counters()
        return []

    async def _m_select(self, _parent: Any, name: Any) -> Any:
        from asyncua import ua

        try:
            label = await asyncio.get_running_loop().run_in_executor(None, self.control.select_recipe, name.Value)
        except Exception as exc:  # noqa: BLE001 - the client gets a status code, the log the reason
            log.warning("OPC UA SelectRecipe(%r): %s", name.Value, exc)
            return ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
        return [ua.Variant(label, ua.VariantType.String)]

    # --- keeping the variables current ---------------------------------------------------------------------------
    def _on_change(self, snap: dict[str, Any]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._update(snap), loop)

    async def _update(self, snap: dict[str, Any]) -> None:
        from asyncua import ua

        n, last, c = self._nodes, snap["last"], snap["counters"]
        values = [("CurrentState", snap["state"], ua.VariantType.String),
                  ("CurrentStateCode", STATE_CODES[snap["state"]], ua.VariantType.Int32),
                  ("CurrentRecipe", snap["recipe"] or "", ua.VariantType.String),
                  ("CurrentRecipeVersion", int(snap["recipe_version"] or 0), ua.VariantType.Int32),
                  ("Sequence", int(last["sequence"]), ua.VariantType.Int64),
                  ("Verdict", last["verdict"], ua.VariantType.String),
                  ("Score", float(last["score"]), ua.VariantType.Double),
                  ("RegionCount", int(last["n_regions"]), ua.VariantType.Int32),
                  ("LargestArea", float(last["largest_area"]), ua.VariantType.Double),
                  ("TriggerId", last["trigger_id"], ua.VariantType.String),
                  ("Error", last["error"], ua.VariantType.String),
                  ("Warning", last.get("warning", ""), ua.VariantType.String),
                  ("Time", datetime.fromtimestamp(last["time"], timezone.utc), ua.VariantType.DateTime),
                  ("Since", datetime.fromtimestamp(c["since"], timezone.utc), ua.VariantType.DateTime)]
        values += [(f"Counters.{k}", int(c[key]), ua.VariantType.Int64)
                   for k, key in (("Total", "total"), ("OK", "ok"), ("NG", "ng"), ("Error", "error"))]
        try:
            for name, value, vtype in values:
                await n[name].write_value(ua.Variant(value, vtype))
        except Exception as exc:  # noqa: BLE001 - one bad write must not stop the others next time
            log.warning("OPC UA: updating the address space failed: %s", exc)
