"""The Modbus TCP server (pymodbus) for PLCs that speak nothing else.

Register map (documented in the README, "Line I/O"); 32-bit values take two registers, high word
first; the same values are readable as holding registers (function 3) and input registers (4):

====  =====================================================================================
 0    state: 0 Halted, 1 Ready, 2 SingleExecution (trigger in progress), 3 ContinuousExecution, 4 Error
 1    last verdict: 0 none yet, 1 OK, 2 NG, 3 ERROR, 4 OUT_OF_RANGE (not judged: the frame was unlike the teach images)
 2-3  last result's sequence (its row in the station's log; changes with every result)
 4-5  last result's trigger id (numeric trigger ids; 0 otherwise)
 6-7  last score x 1000 (signed)
 8    last result's defect region count
 9-10 last result's largest region area, px
11-12 parts counted (since start or reset)       13-14 OK      15-16 NG      17-18 ERROR (and OUT_OF_RANGE)
19   drift warning: 1 while the station warns that scores or light drift (false rejects ahead), else 0
100-101 (holding, written by the PLC) the id to give the next trigger; 0: the station numbers them
====  =====================================================================================

Coils: 0 trigger -- the PLC writes 1, the station sets it back to 0 once the result is in the
registers (poll it: the handshake); 1 run (write 0 to stop, 1 to start; reads the state);
2 reset the counters (write 1). A trigger that cannot be taken (trigger mode off, stopped) leaves
coil 0 at 0 at once and the verdict registers unchanged; the reason is logged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from station.lineio.config import parse_output, redact
from station.lineio.control import HALTED, STATE_CODES, VERDICT_CODES, StationControl, TriggerError
from station.lineio.forwarder import LinkStatus

log = logging.getLogger(__name__)

N_REGISTERS = 110
COIL_TRIGGER, COIL_RUN, COIL_RESET = 0, 1, 2
HR_NEXT_TRIGGER = 100


def _u32(v: int) -> list[int]:
    v = int(v) & 0xFFFFFFFF
    return [v >> 16, v & 0xFFFF]


def status_registers(snap: dict[str, Any]) -> list[int]:
    """Registers 0..19 for a control snapshot."""
    last, c = snap["last"], snap["counters"]
    tid = str(last["trigger_id"])
    return ([STATE_CODES[snap["state"]], VERDICT_CODES.get(last["verdict"], 3)] + _u32(last["sequence"])
            + _u32(int(tid) if tid.isdigit() else 0) + _u32(round(float(last["score"]) * 1000.0))
            + [min(0xFFFF, int(last["n_regions"]))] + _u32(round(float(last["largest_area"])))
            + _u32(c["total"]) + _u32(c["ok"]) + _u32(c["ng"]) + _u32(c["error"])
            + [1 if last.get("warning") else 0])


class ModbusServer:
    kind = "modbus"

    def __init__(self, url: str, control: StationControl) -> None:
        u = parse_output("modbus", url)
        self.host, self.port = u.host, int(u.port or 502)
        self.unit = int(u.params.get("unit", "1"))
        self.control = control
        self._status = LinkStatus("modbus", redact(url), state="starting")
        self._busy: set[str] = set()  # trigger ids in progress (coil 0 reads 1 while any is)
        self._next_trigger = [0, 0]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    def status(self) -> LinkStatus:
        return LinkStatus(**self._status.to_dict())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="modbus-server", daemon=True)
        self._thread.start()
        if not self._started.wait(15.0) or self._status.state != "listening":
            raise RuntimeError(f"Modbus server on {self.host}:{self.port}: {self._status.last_error or 'did not start'}")

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
        if self._thread is not None:
            self._thread.join(10.0)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as exc:  # noqa: BLE001 - reported as the status
            self._status.last_error = f"{type(exc).__name__}: {exc}"
            log.error("Modbus server on %s:%d: %s", self.host, self.port, self._status.last_error)
        finally:
            self._status.state = "stopped"
            self._started.set()

    async def _serve(self) -> None:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        self._loop = asyncio.get_running_loop()
        regs = [SimData(0, count=N_REGISTERS, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]  # coils 0..15
        device = SimDevice(self.unit, simdata=(bits, bits, regs, regs), action=self._action)
        self._server = ModbusTcpServer(device, address=(self.host, self.port))
        await self._server.serve_forever(background=True)
        transport = getattr(self._server, "transport", None)
        if transport is None:
            raise OSError(f"cannot listen on {self.host}:{self.port} (port in use or not allowed)")
        self._status.state = "listening"
        self._started.set()
        log.info("Modbus TCP server listening on %s:%d (unit %d)", self.host, self.port, self.unit)
        await self._server.serving

    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], values: Any) -> Any:
        """Called by pymodbus for every request: render the registers from the control, take commands."""
        from pymodbus.constants import ExcCodes

        snap = self.control.snapshot()
        if function_code in (3, 4, 6, 16, 23):
            if values is not None:  # only the next-trigger-id registers are writable
                if function_code == 4 or address < HR_NEXT_TRIGGER or address + len(values) > HR_NEXT_TRIGGER + 2:
                    return ExcCodes.ILLEGAL_ADDRESS
                for i, v in enumerate(values):
                    self._next_trigger[address - HR_NEXT_TRIGGER + i] = int(v)
            status = status_registers(snap)
            registers[:len(status)] = status
            registers[HR_NEXT_TRIGGER:HR_NEXT_TRIGGER + 2] = self._next_trigger
            return None
        if values is not None and function_code in (5, 15):
            for i, v in enumerate(values):
                self._command(address + i, bool(v))
            snap = self.control.snapshot()
        bits = [bool(self._busy), snap["state"] != HALTED] + [False] * 14
        registers[0] = sum(1 << i for i, b in enumerate(bits) if b)
        return None

    def _command(self, coil: int, value: bool) -> None:
        if coil == COIL_TRIGGER and value:
            hi, lo = self._next_trigger
            number = (hi << 16) | lo
            try:
                ticket = self.control.trigger(str(number) if number else None)
            except TriggerError as exc:
                log.warning("Modbus trigger refused: %s", exc)
                return
            self._busy.add(ticket.trigger_id)
            self._next_trigger = [0, 0]
            threading.Thread(target=self._await, args=(ticket,), daemon=True, name="modbus-trigger").start()
        elif coil == COIL_RUN:
            (self.control.start if value else self.control.stop)()
        elif coil == COIL_RESET and value:
            self.control.reset_counters()

    def _await(self, ticket: Any) -> None:
        ticket.wait()  # bounded: the trigger's timeout plus a grace period
        self._busy.discard(ticket.trigger_id)
