"""SIP backends for the SDK axis: one per SIP domain and set of workarounds, started the first
time a cell needs it and kept while its cells run (a registrar restart would drop every
registration); starting another stops it, since they share the lab's ports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.backends.far_end import SipFarEnd

if TYPE_CHECKING:
    from harness.farend.handle import FarEnd
    from harness.sdks import Sdk
    from impairments.lab import Lab


class SipBackends:
    def __init__(self, lab: "Lab", workdir: Path, page_server: "FarEnd"):
        self.lab, self.workdir, self.page_server = lab, workdir, page_server
        self._running: dict[tuple, SipFarEnd] = {}
        self._failed: dict[tuple, str] = {}

    def get(self, sdk: "Sdk") -> SipFarEnd:
        from harness.backends.sip.backend import SipBackend

        key = (sdk.sip_domain, tuple(sorted(sdk.workarounds)))
        if key in self._failed:  # do not retry a stack that did not start, for every cell
            raise RuntimeError(self._failed[key])
        if key not in self._running:
            # Every backend binds the same lab ports (5060, 8088, the far end's): one runs at a time.
            # Cells come grouped by SDK within each profile, so a backend starts once per profile.
            self.close()
            name = "-".join(filter(None, [sdk.sip_domain or "lab", *key[1]])).replace(".", "_")
            backend = SipBackend(self.lab, self.workdir / name, domain=sdk.sip_domain, workarounds=set(key[1]))
            try:
                backend.start()  # stops whatever it started if it fails
            except Exception as err:
                self._failed[key] = f"the SIP backend for {sdk.name} did not start: {err}"
                raise RuntimeError(self._failed[key]) from None
            self._running[key] = SipFarEnd(backend, self.page_server.url)
        return self._running[key]

    def close(self) -> None:
        for fe in self._running.values():
            fe.arrivals.stop()
            fe.backend.stop()
        self._running.clear()
