"""A private PulseAudio server per browser: WAV-fed virtual microphones, recorded virtual speakers.

The daemon runs inside the browser's network namespace, so the lab's sweep (which kills every
process of an `rtcm-*` namespace) removes it too. A watchdog shell holds a pipe from this
process: when we die, however we die, the pipe closes and the shell kills the daemon; the
speaker recorders (parec) exit on their own once the daemon is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import signal
import subprocess
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pulsectl

from harness.audio.analysis import dominant_hz, read_wav
from harness.audio.arrivals import Arrivals

RATE = 48_000
START_TIMEOUT_S = 10.0
CHUNK_S = 0.01      # a mic feeder writes 10 ms at a time...
PREBUFFER_S = 0.02  # ...keeping at most this much ahead of real time, so the source does not lag
SOCKET_MAX = 107    # sun_path
SHORT_SOCKETS = Path("/run/rtcmatrix/pulse")  # sockets of audio servers whose workdir path is too long

# Chromium with real (PulseAudio) devices: no --use-fake-device-for-media-stream, which bypasses them.
CHROMIUM_ARGS = ["--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
# Playwright launches Chromium with --mute-audio, which plays silence to every sink: pass this as
# `ignore_default_args`, or the speakers record nothing.
CHROMIUM_IGNORE_DEFAULT_ARGS = ["--mute-audio"]
# Firefox ESR with real devices. setSinkId, being [SecureContext], is missing on a page served over
# http from a lab address even with the insecure-media prefs; firefox_prefs(origin) allowlists the host.
FIREFOX_PREFS: dict[str, object] = {
    "media.navigator.streams.fake": False,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    "media.devices.insecure.enabled": True,
    "media.getusermedia.insecure.enabled": True,
    "media.setsinkid.enabled": True,
    "media.cubeb.backend": "pulse",
}


def chromium_args(origin: str | None = None) -> list[str]:
    """CHROMIUM_ARGS, plus treating `origin` (e.g. "http://198.18.0.2:8000") as a secure context."""
    return CHROMIUM_ARGS + ([f"--unsafely-treat-insecure-origin-as-secure={origin}"] if origin else [])


def firefox_prefs(origin: str | None = None) -> dict[str, object]:
    """FIREFOX_PREFS, plus treating `origin`'s host as a secure context (setSinkId needs one).

    A secure page would then upgrade its own http:// <audio>/<video> URLs to https ("mixed display
    content") and fail with MediaError 4; the second pref stops that."""
    host = urlsplit(origin).hostname if origin else None
    extra = {"dom.securecontext.allowlist": host, "security.mixed_content.upgrade_display_content": False}
    return {**FIREFOX_PREFS, **(extra if host else {})}


# Our daemon.conf (through PULSE_CONFIG) instead of /etc/pulse/daemon.conf.
DAEMON_CONF = "".join(f"{k} = {v}\n" for k, v in {
    "daemonize": "no", "allow-exit": "no", "use-pid-file": "no", "system-instance": "no",
    "exit-idle-time": -1, "realtime-scheduling": "no", "high-priority": "no", "flat-volumes": "no",
    "default-sample-format": "s16le", "default-sample-rate": RATE, "alternate-sample-rate": RATE,
    "default-sample-channels": 2, "log-target": "stderr", "log-level": "notice"}.items())


class AudioError(RuntimeError):
    """The audio server could not be started or used; the message says why and what to do."""


@dataclass
class _Mic:
    name: str
    wav: Path
    fifo: Path
    description: str = ""
    module: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    was_default: bool = False  # the default source when it was removed (restore_mic makes it so again)


@dataclass
class _Loop:
    """A microphone that hears a speaker: an echo path."""
    name: str
    speaker: str
    description: str
    module: int | None = None


@dataclass
class _Speaker:
    name: str
    raw: Path
    wav: Path
    description: str = ""
    module: int | None = None
    proc: subprocess.Popen | None = None
    started_at: float | None = None  # wall clock (time.time()) of the recording's first sample


class AudioServer:
    """One pulseaudio daemon with named mics (each looping a WAV) and speakers (each recorded)."""

    def __init__(self, netns: str, workdir: Path, mics: dict[str, Path], speakers: list[str]):
        for name in [*mics, *speakers]:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", name):
                raise ValueError(f"device name {name!r}: use letters, digits, '-' or '_'")
        self.netns = netns
        self.workdir = Path(workdir).resolve()
        self.socket = self.workdir / "native"
        self._short_dir: Path | None = None  # the socket's home when the workdir's path is too long for one
        self._mics = {n: _Mic(n, Path(p).resolve(), self.workdir / f"mic-{n}.fifo") for n, p in mics.items()}
        self._speakers = {n: _Speaker(n, self.workdir / f"speaker-{n}.raw", self.workdir / f"speaker-{n}.wav",
                                      f"rtcm speaker {n}") for n in speakers}
        self._loops: dict[str, _Loop] = {}
        self._arrivals: Arrivals | None = None  # the recordings' growth: wall clock <-> recording time
        self._watchdog: subprocess.Popen | None = None
        self._lifeline: int | None = None
        self.started_s: float | None = None  # how long start() took

    def start(self) -> AudioServer:
        if self._watchdog is not None:
            raise AudioError("this AudioServer was already started; make a new one")
        t0 = time.monotonic()
        for tool, pkg in (("pulseaudio", "pulseaudio"), ("parec", "pulseaudio-utils"), ("ip", "iproute2")):
            if not shutil.which(tool):
                raise AudioError(f"{tool} is not installed: apt-get install {pkg}")
        if not Path(f"/run/netns/{self.netns}").exists():
            raise AudioError(f"network namespace {self.netns!r} does not exist")
        if len(str(self.socket)) > SOCKET_MAX:  # a long --out: the socket alone moves somewhere short
            SHORT_SOCKETS.mkdir(parents=True, exist_ok=True)
            self._short_dir = Path(tempfile.mkdtemp(prefix="pa-", dir=SHORT_SOCKETS))
            self.socket = self._short_dir / "native"
        if missing := [f"{m.name}: {m.wav}" for m in self._mics.values() if not m.wav.is_file()]:
            raise AudioError(f"no such mic WAV: {', '.join(missing)}")
        try:
            self._start_daemon()
            self._load_devices()
            self._start_recorders()
        except BaseException:
            self.stop()
            raise
        self.started_s = time.monotonic() - t0
        return self

    def _start_daemon(self) -> None:
        for d in ("home", "runtime", "state"):
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        (self.workdir / "daemon.conf").write_text(DAEMON_CONF)
        (self.workdir / "client.conf").write_text("autospawn = no\n")
        script = self.workdir / "default.pa"
        script.write_text(f"load-module module-native-protocol-unix socket={self.socket} auth-anonymous=1\n")
        self.socket.unlink(missing_ok=True)
        # -n -F: only our startup script. As root, user mode (--system=no) only warns, and with an
        # anonymous socket no cookie is needed: nothing of /root or a user session is touched.
        cmd = ["pulseaudio", "-n", "-F", str(script), "--daemonize=no", "--exit-idle-time=-1",
               "--disallow-exit", "--use-pid-file=no", "--system=no"]
        watch = '"$@" & p=$!; read _ ; kill $p 2>/dev/null; wait $p'  # EOF on stdin: we are gone
        read_end, self._lifeline = os.pipe()
        with open(self.workdir / "pulseaudio.log", "wb") as log:
            try:
                self._watchdog = subprocess.Popen(
                    ["ip", "netns", "exec", self.netns, "sh", "-c", watch, "sh", *cmd], stdin=read_end,
                    stdout=log, stderr=subprocess.STDOUT, env=self._daemon_env(), start_new_session=True)
            finally:
                os.close(read_end)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._watchdog.poll() is not None:
                raise AudioError(f"pulseaudio exited at start: {self._log_tail()}")
            if self.socket.exists():
                with contextlib.suppress(pulsectl.PulseError), self._pulse():
                    return
            time.sleep(0.02)
        raise AudioError(f"pulseaudio did not answer within {START_TIMEOUT_S:.0f} s: {self._log_tail()}")

    def _daemon_env(self) -> dict[str, str]:
        # Nothing from a user session: with DISPLAY or a session bus it would autolaunch dbus/X11 helpers.
        w = self.workdir
        return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(w / "home"),
                "XDG_RUNTIME_DIR": str(w / "runtime"), "XDG_CONFIG_HOME": str(w / "home"),
                "PULSE_RUNTIME_PATH": str(w / "runtime"), "PULSE_STATE_PATH": str(w / "state"),
                "PULSE_CONFIG": str(w / "daemon.conf"), "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent",
                "LANG": "C.UTF-8"}

    def _load_devices(self) -> None:
        with self._pulse() as pulse:
            for spk in self._speakers.values():
                spk.module = pulse.module_load("module-null-sink", _args(
                    sink_name=f"rtcm_spk_{spk.name}", rate=RATE, channels=2,
                    sink_properties=f"device.description='{spk.description}'"))
            for mic in self._mics.values():
                self._load_mic(pulse, mic)
            if self._speakers:
                pulse.sink_default_set(f"rtcm_spk_{next(iter(self._speakers))}")
            if self._mics:
                pulse.source_default_set(f"rtcm_mic_{next(iter(self._mics))}")

    def _load_mic(self, pulse: pulsectl.Pulse, mic: _Mic) -> None:
        """The mic's pipe source and the thread that feeds it its WAV (also how restore_mic plugs it back)."""
        x, rate = read_wav(mic.wav)
        hz = _tone_hz(x, rate)
        mic.description = f"rtcm mic {mic.name} ({f'{hz:.0f} Hz' if hz else mic.wav.name})"
        mic.fifo.unlink(missing_ok=True)
        mic.stop = threading.Event()
        mic.module = pulse.module_load("module-pipe-source", _args(
            source_name=f"rtcm_mic_{mic.name}", file=mic.fifo, format="s16le", rate=rate, channels=1,
            source_properties=f"device.description='{mic.description}'"))
        pcm = (x * 32767).astype("<i2").tobytes()
        mic.thread = threading.Thread(target=_feed, args=(mic, pcm, rate, mic.stop), daemon=True,
                                      name=f"rtcm-mic-{mic.name}")
        mic.thread.start()

    def _start_recorders(self) -> None:
        env = {**self._daemon_env(), **self.env}
        for spk in self._speakers.values():
            with open(spk.raw, "wb") as out:
                spk.proc = subprocess.Popen(
                    ["ip", "netns", "exec", self.netns, "parec", f"--device=rtcm_spk_{spk.name}.monitor", "--raw",
                     "--format=s16le", f"--rate={RATE}", "--channels=1", "--latency-msec=20",
                     f"--client-name=rtcm-recorder-{spk.name}"],
                    stdout=out, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        with self._pulse() as pulse:
            while len(pulse.source_output_list()) < len(self._speakers):
                if time.monotonic() > deadline:
                    raise AudioError(f"the speaker recorders did not connect within {START_TIMEOUT_S:.0f} s")
                time.sleep(0.005)
            # An idle null sink renders in 2 s blocks, so a new monitor stream would wait up to 2 s
            # for its first sample; suspend/resume restarts the sink's clock at the stream's latency.
            for spk in self._speakers.values():
                index = pulse.get_sink_by_name(f"rtcm_spk_{spk.name}").index
                pulse.sink_suspend(index, 1)
                pulse.sink_suspend(index, 0)
        for spk in self._speakers.values():
            while not spk.raw.stat().st_size:
                if spk.proc.poll() is not None:
                    raise AudioError(f"parec for speaker {spk.name} exited with {spk.proc.returncode}")
                if time.monotonic() > deadline:
                    raise AudioError(f"speaker {spk.name}: nothing recorded within {START_TIMEOUT_S:.0f} s")
                time.sleep(0.002)
            spk.started_at = time.time() - spk.raw.stat().st_size / 2 / RATE
        self._arrivals = Arrivals(lambda: [s.raw for s in self._speakers.values()], step_s=0.04, raw=(2, RATE))

    def stop(self) -> None:
        """Idempotent, and safe after a failed start; the recordings stay readable."""
        self._loops.clear()  # their modules die with the daemon
        if self._arrivals is not None:
            self._arrivals.stop()
        for mic in self._mics.values():
            mic.stop.set()
        for spk in self._speakers.values():
            if spk.proc and spk.proc.poll() is None:
                spk.proc.terminate()
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
        for proc in [p for p in [*(s.proc for s in self._speakers.values()), self._watchdog] if p]:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=3)
        for mic in (m for m in self._mics.values() if m.thread):
            mic.thread.join(timeout=2)
        for spk in (s for s in self._speakers.values() if s.raw.exists()):
            self.recording(spk.name)
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)

    def __enter__(self) -> AudioServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """Environment for a browser: this server only, and never autospawn another one."""
        return {"PULSE_SERVER": f"unix:{self.socket}", "PULSE_CLIENTCONFIG": str(self.workdir / "client.conf")}

    @property
    def mics(self) -> list[str]:
        return [n for n, m in self._mics.items() if m.module is not None]

    @property
    def echo_mics(self) -> list[str]:
        return list(self._loops)

    @property
    def speakers(self) -> list[str]:
        return list(self._speakers)

    def mic_label(self, name: str) -> str:
        """What browsers show as the mic's enumerateDevices() label, e.g. "rtcm mic a (440 Hz)"
        (an echo mic's too, see add_echo_mic)."""
        return self._loops[name].description if name in self._loops else self._mics[name].description

    def speaker_label(self, name: str) -> str:
        return self._speakers[name].description

    def remove_mic(self, name: str) -> None:
        """Unplug: the source disappears while clients may still be capturing from it (their
        streams are killed: no rescue module moves them). Undo with restore_mic."""
        mic = self._mics[name]
        if mic.module is not None:
            mic.stop.set()
            with self._pulse() as pulse:
                mic.was_default = pulse.server_info().default_source_name == f"rtcm_mic_{name}"
                pulse.module_unload(mic.module)
            mic.module = None
            if mic.thread:
                mic.thread.join(timeout=2)

    def restore_mic(self, name: str) -> None:
        """Plug a removed mic back: the same source name and label (so the same deviceId in a
        browser), its WAV again, and the default source again if it was the default."""
        mic = self._mics[name]
        if mic.module is not None:
            return
        with self._pulse() as pulse:
            self._load_mic(pulse, mic)
            if mic.was_default:
                pulse.source_default_set(f"rtcm_mic_{name}")

    def add_echo_mic(self, name: str, speaker: str) -> str:
        """A microphone that hears speaker `speaker`: an acoustic echo path inside the server (a
        remapped source on the speaker's monitor, so browsers list it as an ordinary microphone;
        measured: a perfect echo, 0 dB, 140-180 ms behind the speaker in what a browser sends).
        Returns its label. Take it away with remove_echo_mic: one server serves every cell of its column."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", name) or name in self._mics or name in self._loops:
            raise ValueError(f"echo mic name {name!r}: a new name of letters, digits, '-' or '_'")
        if speaker not in self._speakers:
            raise AudioError(f"echo mic {name}: no speaker {speaker!r}")
        loop = _Loop(name, speaker, f"rtcm mic {name} (hears speaker {speaker})")
        with self._pulse() as pulse:
            loop.module = pulse.module_load("module-remap-source", _args(
                master=f"rtcm_spk_{speaker}.monitor", source_name=f"rtcm_mic_{name}", channels=1,
                source_properties=f"device.description='{loop.description}'"))
        self._loops[name] = loop
        return loop.description

    def remove_echo_mic(self, name: str) -> None:
        """Take an echo mic away again: the server is as it was before add_echo_mic."""
        loop = self._loops.pop(name, None)
        if loop is not None and loop.module is not None:
            with self._pulse() as pulse, contextlib.suppress(pulsectl.PulseError):
                pulse.module_unload(loop.module)

    def recording(self, name: str) -> Path:
        """Everything speaker `name` played so far, as a finished 48 kHz mono WAV (rewritten each call)."""
        spk = self._speakers[name]
        pcm = spk.raw.read_bytes()
        with wave.open(str(spk.wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(pcm[: len(pcm) & ~1])
        return spk.wav

    def offset_s(self, name: str, at: float) -> float:
        """Where wall-clock time `at` (time.time()) falls in speaker `name`'s recording (+/- 40 ms).
        From the recording's growth, not its first sample: a loaded machine's null sink renders late
        and loses time (measured: 9 s in 3 min with two workers), which a fixed start hides."""
        spk = self._speakers[name]
        if spk.started_at is None:
            raise AudioError(f"speaker {name} is not recording")
        position = self._arrivals.position(spk.raw, at) if self._arrivals else None
        return at - spk.started_at if position is None else position

    def _pulse(self) -> pulsectl.Pulse:
        return pulsectl.Pulse("rtcmatrix-audio", server=f"unix:{self.socket}")

    def _log_tail(self) -> str:
        log = self.workdir / "pulseaudio.log"
        return (log.read_text(errors="replace").strip()[-800:] if log.exists() else "") or "(no log)"


def _tone_hz(x: np.ndarray, rate: int) -> float | None:
    """The WAV's frequency if it is a steady tone (most energy within 2 % of one peak), else None."""
    x = x[: 2 * rate]
    hz = dominant_hz(x, rate)
    if not hz:
        return None
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    near = np.abs(np.fft.rfftfreq(x.size, 1 / rate) - hz) < 0.02 * hz
    return hz if spec[near].sum() > 0.8 * spec.sum() else None


def _args(**kw) -> str:
    return " ".join(f'{k}="{v}"' if " " in str(v) or "'" in str(v) else f"{k}={v}" for k, v in kw.items())


def _feed(mic: _Mic, pcm: bytes, rate: int, stop: threading.Event) -> None:
    """Loop the WAV into the FIFO at real time: writing ahead would queue latency in the pipe."""
    try:  # O_NONBLOCK: fail at once (ENXIO) rather than hang if the source is already gone
        fd = os.open(mic.fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.set_blocking(fd, True)
    with contextlib.suppress(OSError):  # a small pipe bounds the stale audio queued while nobody reads
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 4096)
    chunk = int(CHUNK_S * rate) * 2
    start, sent, pos = time.monotonic(), 0, 0
    try:
        while not stop.is_set():
            ahead = sent / 2 / rate - (time.monotonic() - start)
            if ahead > PREBUFFER_S:
                time.sleep(ahead - PREBUFFER_S + CHUNK_S / 2)
                continue
            if ahead < -0.5:  # we were stalled (or blocked while nobody read): resync, do not burst
                start, sent = time.monotonic(), 0
            piece = pcm[pos:pos + chunk]
            if len(piece) < chunk:
                piece += pcm[: chunk - len(piece)]
            pos = (pos + chunk) % len(pcm)
            os.write(fd, piece)
            sent += len(piece)
    except OSError:  # the source went away (remove_mic, or the daemon died)
        pass
    finally:
        os.close(fd)
