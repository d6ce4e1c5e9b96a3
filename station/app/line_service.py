"""The window's line I/O: the saved outputs (``$STATION_HOME/lineio.json``) running beside the live
view, their status for the Line I/O page and the status bar, and changes made on that page.

Qt-free. The forwarders read the window's results log (the outbox) on their own threads; the OPC UA
and Modbus servers follow the window's pipeline through a listener (:meth:`LineService.attach`). A
change of outputs is audited with the addresses redacted -- a password never reaches the audit trail.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from station.app.audit import AuditLog
from station.lineio.config import (
    OUTPUTS,
    LineConfig,
    LineConfigError,
    describe,
    load_line_config,
    save_line_config,
)
from station.lineio.forwarder import LinkStatus

log = logging.getLogger(__name__)


class LineService:
    def __init__(self, home: Path, results_db: Path, audit: AuditLog | None = None) -> None:
        self.config_path = Path(home) / "lineio.json"
        self.cert_dir = Path(home) / "pki"
        self.results_db = Path(results_db)
        self.audit = audit
        self.config, self.problems = load_line_config(self.config_path)
        self.line: Any = None
        self.error = ""
        self._attached: Any = None

    def start(self) -> None:
        """Start the configured outputs (none configured: nothing runs). Never raises."""
        self.stop()
        self.error = ""
        if not self.config.active():
            return
        from station.lineio.hub import LineIO

        config = replace(self.config, trigger_mode=False)  # the window inspects free-running
        try:
            self.line = LineIO(config, self.results_db, cert_dir=self.cert_dir, on_auth_failure=self._refused)
            self.line.start()
        except (LineConfigError, OSError) as exc:
            self.error = str(exc)
            self.line = None
            log.error("line I/O: %s", exc)
        self._attached = None

    def _refused(self, user: str) -> None:
        if self.audit is not None:
            self.audit.record("opcua.login_refused", f"OPC UA user {user}", role="system",
                              note="wrong user or password")

    def attach(self, pipeline: Any) -> None:
        """Follow ``pipeline``'s results (the OPC UA / Modbus last result and counters); idempotent."""
        if self.line is not None and pipeline is not None and pipeline is not self._attached:
            pipeline.add_listener(self.line.on_result)
            self._attached = pipeline

    def status(self) -> list[LinkStatus]:
        """One status per output on the page: running ones as they are, the others ``off``."""
        running = {s.name: s for s in (self.line.status() if self.line is not None else [])}
        out = []
        for name in OUTPUTS:
            if name in running:
                out.append(running[name])
            else:
                url = getattr(self.config, name)
                st = LinkStatus(name, describe(self.config)[name], state="off" if not url or not
                                self.config.enabled.get(name, True) else "stopped")
                st.last_error = self.error if url and self.config.enabled.get(name, True) else ""
                out.append(st)
        return out

    def apply(self, config: LineConfig) -> None:
        """Validate, save, audit (redacted) and restart with ``config``; raises LineConfigError."""
        config.validate()
        old = describe(self.config)
        save_line_config(config, self.config_path)
        self.config, self.problems = config, []
        if self.audit is not None:
            new = describe(config)
            changed = {k: new[k] for k in new if new[k] != old.get(k)}
            self.audit.record("lineio.settings", "line I/O", old={k: old.get(k) for k in changed}, new=changed)
        self.start()

    def stop(self) -> None:
        if self.line is not None:
            self.line.stop(drain_s=0.5)  # the window closes within its budget; what is left is sent next start
            self.line = None
