"""What a browser costs the machine: CPU and memory of its whole process tree and of its page's
processes, sampled with psutil in two states, idle (logged in, no call) and on a call.

The page cannot tell this (the seed's table: "the browser doesn't provide this information at the
JavaScript library level"), so it is read from /proc. Memory is USS and PSS, so the pages a
browser's processes share are not counted once per process; RSS is kept beside them.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time

import psutil

INTERVAL_S = 0.25  # ~4 Hz: a call's CPU is bursty, and top's 1 s hides the peaks
# USS and PSS come from the kernel walking each process's page tables (smaps_rollup): 1.3-3.7 ms
# per Chromium process, measured: 5 % of a core at 4 Hz. Memory moves slowly: it is read when a
# state begins and every 5 s; CPU and RSS at every tick.
MEMORY_INTERVAL_S = 5.0
# Finding the tree reads every process's stat (4 ms here); a new renderer is found within 2 s.
TREE_INTERVAL_S = 2.0
MB = 1024 * 1024
STATES = ("idle", "call")
_NO_STATE_YET = object()
NOT_THE_BROWSER = {"Xvfb", "ip"}  # display and launch helpers that start beside an engine


def netns_pids(netns: str) -> set[int]:
    """Every process in a named network namespace (the lab's client side holds only our browsers,
    their driver and their audio servers)."""
    try:
        ino = os.stat(f"/run/netns/{netns}").st_ino
    except OSError:
        return set()
    found = set()
    for pid in psutil.pids():
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}/ns/net").st_ino == ino:
                found.add(pid)
    return found


def browser_roots(before: set[int], after: set[int]) -> list[int]:
    """The roots of the process trees that appeared during a launch: the browser, and any helper
    it detached (Chromium's crash handler)."""
    new = after - before
    roots = []
    for pid in sorted(new):
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            if p.ppid() not in new and p.name() not in NOT_THE_BROWSER:
                roots.append(pid)
    return roots


def is_page_process(p: psutil.Process) -> bool:
    """A process that renders pages: Chromium's renderers, Firefox's tab content processes,
    WebKit's web processes. Browser, GPU, network and utility processes are not."""
    with contextlib.suppress(psutil.Error):
        cmd = p.cmdline()
        if "--type=renderer" in cmd and "--extension-process" not in cmd:
            return True
        if "-contentproc" in cmd and "tab" in cmd:
            return True
        return p.name().startswith("WebKitWebProces")
    return False


class ProcessSampler:
    """Samples a browser's process trees in a thread until stopped; `state()` names what the
    samples taken meanwhile are of. Samples outside a state are taken but not summarised."""

    def __init__(self, roots: list[int], interval_s: float = INTERVAL_S):
        self.roots = []
        for pid in roots:
            with contextlib.suppress(psutil.Error):
                self.roots.append(psutil.Process(pid))
        self.interval_s = interval_s
        self.samples: list[dict] = []
        self.own_cpu_pct: float | None = None
        self._state: str | None = None
        self._cpu: dict[tuple[int, float], float] = {}
        self._last: float | None = None
        self._procs: list[psutil.Process] | None = None
        self._tree_at = 0.0
        self._page: dict[tuple[int, float], bool] = {}
        self._mem_state: object = _NO_STATE_YET  # the state the last memory read was in
        self._mem_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="rtcm-process-sampler")
        self.cores = psutil.cpu_count() or 1

    def start(self) -> "ProcessSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    @contextlib.contextmanager
    def state(self, name: str):
        if name not in STATES:
            raise ValueError(f"process state {name!r} is not one of {STATES}")
        self._state = name
        try:
            yield
        finally:
            self._state = None

    def _loop(self) -> None:
        cpu0, wall0 = time.thread_time(), time.monotonic()
        self._sample()
        while not self._stop.wait(self.interval_s):
            self._sample()
        wall = time.monotonic() - wall0
        self.own_cpu_pct = 100 * (time.thread_time() - cpu0) / wall if wall > 0 else None

    def _tree(self, now: float) -> list[psutil.Process]:
        if self._procs is None or now - self._tree_at >= TREE_INTERVAL_S:
            procs = []
            for root in self.roots:
                with contextlib.suppress(psutil.Error):
                    procs += [root, *root.children(recursive=True)]
            self._procs, self._tree_at = procs, now
        return self._procs

    def _is_page(self, key: tuple[int, float], p: psutil.Process) -> bool:
        if key not in self._page:
            self._page[key] = is_page_process(p)
        return self._page[key]

    def _sample(self) -> None:
        now, state = time.monotonic(), self._state
        full = state != self._mem_state or now - self._mem_at >= MEMORY_INTERVAL_S
        totals = {"cpu": 0.0, "rss": 0, "page_cpu": 0.0, "uss": 0, "pss": 0, "page_uss": 0, "page_pss": 0}
        seen, count = {}, 0
        for p in self._tree(now):
            try:
                with p.oneshot():
                    key = (p.pid, p.create_time())
                    times = p.cpu_times()
                    mem = p.memory_full_info() if full else p.memory_info()
                    page = self._is_page(key, p)
            except psutil.Error:
                continue
            count += 1
            used = times.user + times.system
            seen[key] = used
            delta = used - self._cpu[key] if key in self._cpu else 0.0
            totals["cpu"] += delta
            totals["rss"] += mem.rss
            if page:
                totals["page_cpu"] += delta
            if full:
                totals["uss"] += mem.uss
                totals["pss"] += mem.pss
                if page:
                    totals["page_uss"] += mem.uss
                    totals["page_pss"] += mem.pss
        dt = now - self._last if self._last is not None else None
        self._cpu, self._last = seen, now
        if full and count:
            self._mem_state, self._mem_at = state, now
        if dt is None or dt <= 0 or not count:
            return
        memory = ("uss", "pss", "page_uss", "page_pss") if full else ()
        self.samples.append({
            "t": round(now, 3), "state": state, "processes": count,
            "cpu_pct": round(100 * totals["cpu"] / dt, 2),
            "page_cpu_pct": round(100 * totals["page_cpu"] / dt, 2),
            **{f"{k}_mb": round(totals[k] / MB, 2) for k in ("rss", *memory)},
        })

    def figures(self) -> dict[str, float | int | None]:
        """The flat figures `reports.results.Metrics` carries, per state: max and median."""
        out: dict[str, float | int | None] = {"sampler_cpu_pct": _r(self.own_cpu_pct)}
        for state in STATES:
            rows = [s for s in self.samples if s["state"] == state]
            if not rows:
                continue
            col = lambda k: [s[k] for s in rows if k in s]  # noqa: E731 (memory is not in every sample)
            cpu = col("cpu_pct")
            out |= {
                f"cpu_{state}_pct": _max(cpu),
                f"cpu_{state}_median_pct": _median(cpu),
                f"cpu_{state}_machine_pct": _r(max(cpu) / self.cores),
                f"mem_{state}_uss_mb": _max(col("uss_mb")),
                f"mem_{state}_pss_mb": _max(col("pss_mb")),
                f"mem_{state}_pss_median_mb": _median(col("pss_mb")),
                f"mem_{state}_rss_mb": _max(col("rss_mb")),
                f"page_cpu_{state}_pct": _max(col("page_cpu_pct")),
                f"page_mem_{state}_uss_mb": _max(col("page_uss_mb")),
                f"process_{state}_samples": len(rows),
            }
        return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _max(values: list[float]) -> float | None:
    return _r(max(values)) if values else None


def _median(values: list[float]) -> float | None:
    return _r(statistics.median(values)) if values else None
