"""RTL fixtures: every simulator the project installs (a missing one fails, it never skips) and one
build folder per test session, so each generated engine compiles once."""
from __future__ import annotations

from pathlib import Path

import pytest

from rtl.simulate import SIMULATORS


@pytest.fixture(scope="session")
def rtl_build(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rtl-build")


@pytest.fixture(params=SIMULATORS)
def simulator(request) -> str:
    return request.param
