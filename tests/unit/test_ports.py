"""bordermon never hands one loopback port to two listeners (the demo's, the tests')."""

from __future__ import annotations

from types import SimpleNamespace
from typing import ClassVar

from bordermon import ports
from bordermon.ports import free_port, port_or_free


class _KernelRepeating:
    """A socket whose kernel hands out the ports of a script, repeats included."""

    script: ClassVar[list[int]] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def bind(self, address):
        self.port = self.script.pop(0)

    def getsockname(self):
        return ("127.0.0.1", self.port)


def test_a_port_the_kernel_gives_twice_is_handed_out_once(monkeypatch):
    # Two binds in a row getting one port is what gave a Kafka node one port for two listeners.
    monkeypatch.setattr(ports, "_handed_out", set())
    monkeypatch.setattr(ports, "socket", SimpleNamespace(socket=_KernelRepeating))
    _KernelRepeating.script = [40707, 40707, 40707, 40708]
    assert [free_port(), free_port()] == [40707, 40708]


def test_many_real_ports_are_all_distinct():
    handed = [free_port() for _ in range(300)]
    assert len(set(handed)) == 300


def test_a_preferred_port_is_handed_out_once(monkeypatch):
    monkeypatch.setattr(ports, "_handed_out", set())
    preferred = free_port()  # free now, and no longer in the record below
    ports._handed_out.clear()
    first, second = port_or_free(preferred), port_or_free(preferred)
    assert first == preferred and second != preferred
