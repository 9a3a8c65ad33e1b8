"""A SIGINT that something swallows is delivered again; one that pytest takes up is not."""

import os
import signal
import time

import pytest

from harness import interrupts


@pytest.fixture
def handler(monkeypatch):
    monkeypatch.setattr(interrupts, "REDELIVER_S", 0.2)
    before = signal.getsignal(signal.SIGINT)
    interrupts.install()
    yield
    interrupts.handled()
    signal.signal(signal.SIGINT, before)


def _swallow_one() -> None:
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    except KeyboardInterrupt:
        pass  # as whatever once swallowed a run's Ctrl-C in CI


def test_a_swallowed_interrupt_is_delivered_again(handler, capfd):
    _swallow_one()
    with pytest.raises(KeyboardInterrupt, match="delivered again"):
        time.sleep(2)
    assert "the interrupt was not taken up" in capfd.readouterr().err


def test_an_interrupt_taken_up_is_not_delivered_again(handler):
    _swallow_one()
    interrupts.handled()
    time.sleep(0.6)  # three watchdog periods: nothing comes


def test_a_worker_ignores_a_second_sigint_but_not_the_redelivery(monkeypatch):
    monkeypatch.setattr(interrupts, "REDELIVER_S", 0.3)
    before = signal.getsignal(signal.SIGINT)
    interrupts.install(ignore_later=True)
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGINT)  # the controller's, arriving with the terminal's: ignored
        time.sleep(0.05)
        with pytest.raises(KeyboardInterrupt, match="delivered again"):
            time.sleep(2)
    finally:
        interrupts.handled()
        signal.signal(signal.SIGINT, before)
