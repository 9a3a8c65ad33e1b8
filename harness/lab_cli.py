"""`rtcmatrix lab ...`: the lab a person opens by hand and pokes at."""

from __future__ import annotations

import os
from typing import Optional

import typer
from rich.table import Table

from harness.terminal import console, fail, need_root
from impairments.profile import ProfileError

lab_app = typer.Typer(no_args_is_help=True, help="A lab you open by hand: up, exec, set, check, down.")
NAME_OPT = typer.Option("default", "--name", help="which standing lab (several may be up at once)")


@lab_app.command("up")
def lab_up(
    profile: str = typer.Option("ideal", "--profile", help="preset name or YAML file"),
    name: str = NAME_OPT,
    far_end: bool = typer.Option(True, "--far-end/--no-far-end", help="also start the far end and its test page"),
    backend: str = typer.Option("auto", "--backend", help="auto | host | uml"),
) -> None:
    """Build the lab and keep it until `rtcmatrix lab down`."""
    from impairments import standing

    need_root()
    try:
        data = standing.up(name, profile, far_end, backend)
    except (standing.StandingError, ProfileError) as e:
        fail(str(e))
    _describe(data)


def _describe(data: dict) -> None:
    ns = data["namespaces"]
    console.print(f"lab {data['name']} is up ({data['backend']}), owner pid {data['pid']}")
    console.print(f"  client namespace {ns['client']}  address {data['client_ip']}")
    console.print(f"  server namespace {ns['server']}  address {data['server_ip']}")
    console.print(f"  router namespace {ns['router']}")
    if data.get("far_end"):
        console.print(f"  far end / test page {data['far_end']}/  (reach it from the client side)")
    if data.get("profile"):
        from impairments.profile import Profile

        console.print(f"  profile {data['profile'].get('name')}: {Profile.model_validate(data['profile']).summary()}")
    console.print(f"  try: rtcmatrix lab exec -- python3 -c \"import urllib.request; "
                  f"print(urllib.request.urlopen('http://{data['server_ip']}:8080/').status)\"")


@lab_app.command("status")
def lab_status(name: Optional[str] = typer.Option(None, "--name")) -> None:
    """Show the standing labs."""
    from impairments import standing

    found = [name] if name else standing.names()
    if not found or not standing.state(found[0]):
        console.print("no standing lab is up")
        return
    for n in found:
        _describe(standing.request(n, "describe"))


@lab_app.command("down")
def lab_down(name: str = NAME_OPT, all_labs: bool = typer.Option(False, "--all", help="every standing lab")) -> None:
    """Tear a standing lab down."""
    from impairments import standing

    need_root()
    targets = standing.names() if all_labs else [name]
    gone = [n for n in targets if standing.down(n)]
    if not gone and not all_labs:
        fail(f"no standing lab named {name!r} is up", 1)
    console.print(f"down: {', '.join(gone) or '-'}")


@lab_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab_exec(
    ctx: typer.Context,
    side: str = typer.Option("client", "--side", help="client | server"),
    name: str = NAME_OPT,
) -> None:
    """Run a command inside the lab: rtcmatrix lab exec [--side server] -- CMD [ARGS...]"""
    from impairments import standing

    if side not in ("client", "server"):
        fail(f"--side: {side!r} is not client or server")
    if not ctx.args:
        fail("give the command after --, e.g. rtcmatrix lab exec -- ping 198.18.1.2")
    data = standing.state(name)
    if not data:
        fail(f"no standing lab named {name!r}; start one with `rtcmatrix lab up`")
    os.execvp("ip", ["ip", "netns", "exec", data["namespaces"][side], *ctx.args])


@lab_app.command("set")
def lab_set(profile: str = typer.Option(..., "--profile", help="preset name or YAML file (a schedule too)"),
            name: str = NAME_OPT) -> None:
    """Change the conditions of a standing lab, live."""
    from impairments import standing
    from impairments.presets import resolve

    try:
        p = resolve(profile)
        reply = standing.request(name, "set", profile=p.model_dump(mode="json"))
    except (standing.StandingError, ProfileError) as e:
        fail(str(e))
    if "schedule" in reply:
        console.print(f"schedule {p.name} running ({len(p.steps)} steps{', looping' if p.loop else ''})")
    else:
        console.print(f"applied {p.name} in {1000 * reply['took_s']:.0f} ms: {p.summary()}")


@lab_app.command("check")
def lab_check(name: str = NAME_OPT, probes: int = typer.Option(1000, "--probes", min=50, max=100_000)) -> None:
    """Measure the standing lab's link (delay, loss, rate, reordering) per direction."""
    from impairments import standing

    try:
        reply = standing.request(name, "check", probes=probes, timeout_s=600)
    except standing.StandingError as e:
        fail(str(e))
    check = reply["check"]
    if reply.get("schedule_running"):
        console.print(f"schedule {reply['schedule_running']} is running: the link changed during the check, "
                      "so it is compared with the step in force at its end", style="yellow")
    table = Table(title=f"link check, {probes} probes per direction")
    for col in ("direction", "delay ms (mean ± sd)", "loss % [95 % CI]", "rate kbit/s", "reordered %", "duplicated"):
        table.add_column(col)
    for d in ("uplink", "downlink"):
        m = check[d]
        mean = "-" if m["delay_ms_mean"] is None else f"{m['delay_ms_mean']:.2f} ± {m['delay_ms_sd'] or 0:.2f}"
        table.add_row(d, mean, f"{m['loss_pct']:.2f} [{m['loss_ci95_pct'][0]:.2f}, {m['loss_ci95_pct'][1]:.2f}]",
                      "-" if m["rate_kbit"] is None else f"{m['rate_kbit']:.0f}", f"{m['reordered_pct']:.1f}",
                      str(m["duplicated"]))
    console.print(table)
    for dev in check["deviations"]:
        console.print(f"{dev['direction']} {dev['what']}: expected {dev['expected']:.2f}, "
                      f"measured {dev['measured']:.2f} (allowed {dev['allowed']})", style="yellow")
    if not check["deviations"]:
        console.print("the link is as configured")
