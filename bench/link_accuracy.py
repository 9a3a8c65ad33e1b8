"""Configured vs measured for every preset, plus lab start-up time and CPU cost.

    python bench/link_accuracy.py [--probes N] [--backend auto|host|uml] [PRESET ...]

Prints figures; asserts nothing (performance goals live here, not in timed tests).
"""

from __future__ import annotations

import argparse
import time

import psutil

from impairments import linkcheck
from impairments.lab import Lab
from impairments.presets import presets
from impairments.schedule import Schedule, run_probed


def fmt(v, f="{:.2f}"):
    return "-" if v is None else f.format(v)


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc] + proc.children(recursive=True):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def schedule_figures(lab: Lab, name: str, schedule: Schedule) -> None:
    """One pass of the schedule under 200 pps probes: each step's delay and loss, and its drift."""
    runner, probe = run_probed(lab, schedule, pps=200, head_s=0.2, tail_s=0.1)
    for record, step in zip(runner.records, schedule.steps):
        start, end = runner.started_at + record.applied_s + 0.1, runner.started_at + record.due_s + step.duration_s
        for direction in ("uplink", "downlink"):
            t = probe[direction]
            window = [d for s, d in zip(t.sent_at, t.delay_ms) if start <= s < end]
            got = [d for d in window if d is not None]
            link = getattr(step.profile, direction)
            print(f"{name + ' #' + str(record.index):<18} {direction[:4]:<5} {link.delay_ms:>9g} "
                  f"{fmt(sum(got) / len(got) if got else None):>10} {'':>6} {100 * link.mean_loss_fraction:>8.2f} "
                  f"{fmt(100 * (1 - len(got) / len(window)) if window else None):>7} {'':>16} "
                  f"drift {record.drift_ms:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="presets to measure (default: all)")
    ap.add_argument("--probes", type=int, default=1000)
    ap.add_argument("--backend", default="auto", choices=["auto", "host", "uml"])
    args = ap.parse_args()
    chosen = {n: p for n, p in presets().items() if not args.names or n in args.names}

    t0 = time.monotonic()
    with Lab(backend=args.backend) as lab:
        started = time.monotonic() - t0
        router_pid = lab.router.proc.pid if getattr(lab.router, "proc", None) else None
        print(f"lab backend {lab.backend}: start-up {started:.2f} s (router boot {lab.router.boot_s:.2f} s)")
        if router_pid:
            print(f"router memory (RSS, whole UML process tree): "
                  f"{sum(p.memory_info().rss for p in [psutil.Process(router_pid)] + psutil.Process(router_pid).children(recursive=True)) / 2**20:.0f} MiB")
        header = (f"{'preset':<18} {'dir':<5} {'delay cfg':>9} {'delay meas':>10} {'sd':>6} "
                  f"{'loss cfg':>8} {'loss meas [95% CI]':>22} {'rate cfg':>9} {'rate meas':>9} {'reord%':>6} {'ok':>3}")
        print(header)
        print("-" * len(header))
        for name, profile in chosen.items():
            if isinstance(profile, Schedule):
                schedule_figures(lab, name, profile)
                continue
            lab.apply(profile)
            c0, w0 = cpu_seconds([router_pid] if router_pid else []), time.monotonic()
            check = linkcheck.check(lab, probes=args.probes)
            cpu = (cpu_seconds([router_pid] if router_pid else []) - c0) / (time.monotonic() - w0)
            for direction in ("uplink", "downlink"):
                link, m = getattr(profile, direction), getattr(check, direction)
                dev = [d.what for d in check.deviations if d.direction == direction]
                print(f"{name:<18} {direction[:4]:<5} {link.delay_ms:>9g} {fmt(m.delay_ms_mean):>10} {fmt(m.delay_ms_sd):>6} "
                      f"{100 * link.mean_loss_fraction:>8.2f} "
                      f"{fmt(m.loss_pct):>7} [{m.loss_ci95_pct[0]:5.2f},{m.loss_ci95_pct[1]:6.2f}] "
                      f"{fmt(link.rate_kbit, '{:g}'):>9} {fmt(m.rate_kbit, '{:.0f}'):>9} {m.reordered_pct:>6.1f} "
                      f"{'yes' if not dev else 'NO ' + ','.join(dev)}")
            if router_pid:
                print(f"{'':<18} router CPU during the check: {100 * cpu:.1f} % of one core")
    print(f"total {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
