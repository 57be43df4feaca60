import pytest

from tests.integration.harness import Broker


@pytest.fixture
def broker():
    b = Broker()
    yield b
    b.stop()
