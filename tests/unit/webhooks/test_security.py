"""Webhook signatures and the private-address rule."""

from __future__ import annotations

import time

import pytest

from server.webhooks.security import UnsafeURLError, resolve, sign, verify


def test_signature_round_trip_and_tampering():
    now = int(time.time())
    header = sign("s3cret", now, b'{"seq":1}')
    assert header.startswith(f"t={now},v1=")
    assert verify("s3cret", header, b'{"seq":1}')
    assert not verify("s3cret", header, b'{"seq":2}')
    assert not verify("other", header, b'{"seq":1}')
    assert not verify("s3cret", header, b'{"seq":1}', now=now + 3600)  # a replay an hour later
    assert not verify("s3cret", "garbage", b"")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.5/",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        # non-global addresses in other encodings and blocks
        "http://[::7f00:1]/",  # IPv4-compatible 127.0.0.1
        "http://[::a00:1]/",  # IPv4-compatible 10.0.0.1
        "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[64:ff9b:1::808:808]/",  # local-use NAT64
        "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
        "http://[fec0::1]/",  # site-local
        "http://192.0.0.8/",  # IETF protocol assignments
        "http://192.88.99.1/",  # 6to4 relay anycast
    ],
)
async def test_private_addresses_are_refused(url):
    with pytest.raises(UnsafeURLError):
        await resolve(url, allow_private=False)
    assert (await resolve(url, allow_private=True)).url == url


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "http:///nohost", "http://user:pw@example.com/", "nope"]
)
async def test_malformed_urls_are_refused(url):
    with pytest.raises(UnsafeURLError):
        await resolve(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::808:808]/",  # NAT64 of 8.8.8.8
        "http://[2002:808:808::1]/",  # 6to4 of 8.8.8.8
        "http://[2606:4700::1111]/",
    ],
)
async def test_public_addresses_in_ipv6_encodings_are_allowed(url):
    assert (await resolve(url, allow_private=False)).url == url


async def test_public_literal_is_allowed():
    target = await resolve("https://93.184.215.14:8443/x", allow_private=False)
    assert (target.address, target.port, target.scheme) == ("93.184.215.14", 8443, "https")
