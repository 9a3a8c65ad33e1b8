"""Ctrl-C that always stops the run.

Once in CI a serial run's SIGINT was lost: the run went on through five more cells until the test
killed it 60 s later. Where it landed is unknown (the main thread spends its time in Playwright's
greenlet dispatcher, subprocess waits and helper-thread joins), so the first SIGINT also starts a
watchdog. If pytest has not taken up the interrupt within REDELIVER_S, the watchdog prints where the
main thread is and delivers it again.

A worker of a parallel run ignores later SIGINTs (the terminal's and the controller's arrive
together, and a second one must not cut its lab's teardown short); the watchdog's own redelivery
still lands.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
import time
import traceback

REDELIVER_S = 2.0  # teardown after a taken-up interrupt is about 1.3 s here; the run must stop within 5 s
TRIES = 5

_state = {"seen": False, "handled": False, "redeliver": False, "ignore_later": False}


def install(ignore_later: bool = False) -> None:
    """Take over SIGINT in this process (the main thread only; elsewhere nothing changes)."""
    _state.update(seen=False, handled=False, redeliver=False, ignore_later=ignore_later)
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, _on_sigint)


def handled() -> None:
    """pytest has the interrupt: its session is winding down."""
    _state["handled"] = True


def _on_sigint(signum, frame):
    if _state["redeliver"]:
        _state["redeliver"] = False
        raise KeyboardInterrupt("interrupted (delivered again)")
    if not _state["seen"]:
        _state["seen"] = True
        threading.Thread(target=_watchdog, name="rtcmatrix-interrupt", daemon=True).start()
        raise KeyboardInterrupt
    if _state["ignore_later"]:
        return
    raise KeyboardInterrupt


def _watchdog() -> None:
    main = threading.main_thread().ident
    for _ in range(TRIES):
        time.sleep(REDELIVER_S)
        if _state["handled"]:
            return
        frame = sys._current_frames().get(main)
        where = "".join(traceback.format_stack(frame, limit=8)) if frame else "(no frame)\n"
        sys.stderr.write(f"rtcmatrix: the interrupt was not taken up within {REDELIVER_S:g} s; delivering it "
                         f"again. The main thread was at:\n{where}")
        sys.stderr.flush()
        _state["redeliver"] = True
        _thread.interrupt_main(signal.SIGINT)
