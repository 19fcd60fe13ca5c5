"""The fake Kubernetes API every controller test starts from."""

from __future__ import annotations

import pytest

from tests.unit.fakes import FakeKube


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()
