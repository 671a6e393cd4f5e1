"""Fixtures of the chart tests: the value sets and renderings shared by many tests."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from daprplane.plugins.sentry.ca import bundle
from tests.helm.cases import HA, NAMESPACE, TRUST_DOMAIN, VALUE_SETS, byo_values
from tests.helm.chart import Rendered, render


@pytest.fixture(scope="session")
def byo_bundle() -> bundle.TrustBundle:
    """A root and issuer such as an operator brings: what sentry itself would generate."""
    return bundle.generate(TRUST_DOMAIN, NAMESPACE, datetime.timedelta(minutes=15))


@pytest.fixture(params=VALUE_SETS)
def value_set(request: pytest.FixtureRequest, byo_bundle: bundle.TrustBundle) -> dict[str, Any]:
    return {"default": {}, "ha": HA, "byo": byo_values(byo_bundle)}[request.param]


@pytest.fixture(scope="session")
def rendered_default() -> Rendered:
    return render()


@pytest.fixture(scope="session")
def rendered_ha() -> Rendered:
    return render(HA)
