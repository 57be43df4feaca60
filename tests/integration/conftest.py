import pytest

from harness.processes import Broker


@pytest.fixture
def broker():
    b = Broker()
    yield b
    b.stop()
