from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from daprplane.core.health import Target
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.svid import Svid, SvidError
from tests.pki import SentryCA

ID = "spiffe://localhost/ns/default/dapr-placement"


@pytest.fixture(scope="module")
def ca() -> SentryCA:
    return SentryCA()


async def test_start_retries_until_the_first_svid(ca: SentryCA) -> None:
    attempts = 0

    async def fetch() -> Svid:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("sentry down")
        return ca.svid(ID)

    target = Target("security-provider")
    source = SvidSource(fetch, target=target, retry_interval=0.01)
    assert not source.ready and not target.is_ready
    with pytest.raises(RuntimeError):
        _ = source.current
    async with source:
        assert attempts == 3
        assert source.ready and target.is_ready
        assert str(source.current.spiffe_id) == ID
        assert (await source.wait_ready()) is source.current


async def test_renews_at_half_life_and_notifies(ca: SentryCA) -> None:
    issued: list[Svid] = []

    def fetch() -> Svid:  # a synchronous in-process signer works too
        # X.509 times have whole seconds: with a 4s TTL, half-life is 1-2s after issuance.
        issued.append(ca.svid(ID, ttl=timedelta(seconds=4)))
        return issued[-1]

    source = SvidSource(fetch, check_interval=0.05)
    seen: list[Svid] = []
    source.subscribe(seen.append)
    async with source:
        await asyncio.sleep(0.9)
        assert len(issued) == 1
        for _ in range(30):
            if len(issued) > 1:
                break
            await asyncio.sleep(0.05)
        assert len(issued) == 2
        renewed = issued[-1]
        assert renewed.renew_at > source.current.not_before
        await asyncio.sleep(0.5)
        assert issued == [issued[0], renewed]  # no renewal storm after it
        assert seen == [renewed] and source.current is renewed


async def test_svid_already_due_does_not_spin(ca: SentryCA) -> None:
    calls = 0

    def fetch() -> Svid:
        nonlocal calls
        calls += 1
        return ca.svid(ID, ttl=timedelta(seconds=-1), skew=timedelta(seconds=10))

    async with SvidSource(fetch, check_interval=0.01, retry_interval=0.1):
        await asyncio.sleep(0.35)
    assert 2 <= calls <= 6


async def test_failed_renewal_keeps_the_old_svid_and_retries(ca: SentryCA) -> None:
    calls = 0

    def fetch() -> Svid:
        nonlocal calls
        calls += 1
        if calls in (2, 3):
            raise ConnectionError("sentry down")
        # Half-life already passed: renewal is due at once.
        return ca.svid(ID, ttl=timedelta(hours=1), skew=timedelta(hours=2))

    source = SvidSource(fetch, check_interval=0.02, retry_interval=0.2)
    async with source:
        first = source.current
        await asyncio.sleep(0.3)  # the renewal failed twice so far (at 0s and 0.2s)
        assert calls == 3 and source.current is first
        await asyncio.sleep(0.2)
        assert calls == 4 and source.current is not first


async def test_in_process_signer_may_return_chain_and_key(ca: SentryCA) -> None:
    svid = ca.svid(ID)
    async with SvidSource(lambda: (svid.chain_pem, svid.private_key)) as from_pem:
        assert from_pem.current.certificates == svid.certificates
    async with SvidSource(lambda: (list(svid.certificates), svid.private_key)) as from_list:
        assert from_list.current.spiffe_id == svid.spiffe_id


async def test_renew_now_raises_to_the_caller(ca: SentryCA) -> None:
    svid = ca.svid(ID)
    results: list[object] = [svid, SvidError("bad chain")]

    def fetch() -> Svid:
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result  # type: ignore[return-value]

    async with SvidSource(fetch) as source:
        with pytest.raises(SvidError):
            await source.renew()
        assert source.current is svid
