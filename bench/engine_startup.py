"""Launch-to-connected per engine, cold (a new browser) and warm (a running browser, a fresh page).

    python bench/engine_startup.py [--runs N] [--audio pulse|fake] [ENGINE ...]

Targets (cold): Chromium under 1.5 s, Firefox under 4 s. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness.engines import ENGINES, BrowserSpec
from harness.farend.handle import FarEnd
from harness.pool import BrowserPool
from harness.softphone import Softphone
from impairments.lab import Lab


def to_connected(pool: BrowserPool, name: str, far_end: FarEnd) -> dict:
    t0 = time.monotonic()
    browser = pool.get(name)
    t_launch = time.monotonic()
    page = browser.new_page()
    try:
        phone = Softphone(page, far_end)
        info = phone.open()
        t_page = time.monotonic()
        if not phone.capabilities.get("RTCPeerConnection"):
            return {"launch": t_launch - t0, "page": t_page - t_launch, "connected": None, "total": None}
        phone.login()
        phone.call()
        phone.wait_for("connected")
        t_conn = time.monotonic()
        phone.hangup()
        del info
        return {"launch": t_launch - t0, "page": t_page - t_launch, "connected": t_conn - t_page, "total": t_conn - t0}
    finally:
        page.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("engines", nargs="*", default=list(ENGINES))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--audio", default="pulse", choices=["pulse", "fake"])
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rtcm-bench-"))
    with Lab() as lab:
        far_end = FarEnd(lab, work / "farend").start()
        try:
            print(f"{'engine':10} {'kind':5} {'launch s':>9} {'page s':>7} {'connect s':>10} {'total s':>8}")
            for name in args.engines:
                specs = {name: BrowserSpec(name=name, engine=name, audio=args.audio)}
                cold, warm = [], []
                pool = BrowserPool(lab, far_end, work, specs)
                try:
                    pool.driver()  # the driver is started once per run, not per browser
                    for _ in range(args.runs):
                        pool.stop_browser(name)  # cold: a new browser process (and audio server)
                        cold.append(to_connected(pool, name, far_end))
                        warm += [to_connected(pool, name, far_end) for _ in range(args.runs)]
                finally:
                    pool.close()
                for kind, rows in (("cold", cold), ("warm", warm)):
                    med = {k: statistics.median([r[k] for r in rows]) if all(r[k] is not None for r in rows) else None
                           for k in rows[0]}
                    f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
                    print(f"{name:10} {kind:5} {f(med['launch']):>9} {f(med['page']):>7} {f(med['connected']):>10} "
                          f"{f(med['total']):>8}   (median of {len(rows)})")
        finally:
            far_end.stop()


if __name__ == "__main__":
    main()
