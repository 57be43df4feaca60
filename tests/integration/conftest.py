"""The `broker` fixture: the embedded broker (Tansu) by default; a test marked
`@pytest.mark.brokers("tansu", "kafka")` runs once on each, ids `[tansu]` and `[kafka]`
(Apache Kafka from Maven Central's jars, one node, docker-compose.yml's settings)."""

import pytest

from harness.processes import start_broker_of


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "broker" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("brokers")
        metafunc.parametrize("broker", marker.args if marker else ("tansu",), indirect=True)


@pytest.fixture
def broker(request, tmp_path):
    b = start_broker_of(request.param, tmp_path / "kafka")
    yield b
    b.stop()
