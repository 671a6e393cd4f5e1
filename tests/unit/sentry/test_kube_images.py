"""The container-images extension of the Kubernetes validator."""

from __future__ import annotations

import json

from daprplane.plugins.sentry import images
from tests.pki import builder, new_key, sign

POD = {
    "spec": {
        "initContainers": [
            {"name": "setup", "image": "busybox"},
            {"name": "daprd", "image": "ghcr.io/dapr/daprd:1.18.0", "restartPolicy": "Always"},
        ],
        "containers": [
            {"name": "app", "image": "example/app:1"},
            {"name": "side", "image": "example/side<&>:2"},
        ],
    },
    "status": {
        "initContainerStatuses": [
            {"name": "daprd", "imageID": "ghcr.io/dapr/daprd@sha256:aaa"},
        ],
        "containerStatuses": [
            {"name": "app", "imageID": "sha256:bbb"},
            {"name": "side", "imageID": "docker.io/example/side:2"},
        ],
    },
}


def test_entries_in_dapr_order() -> None:
    assert images.container_images(POD) == [
        {
            "role": "daprd",
            "containerName": "daprd",
            "image": "ghcr.io/dapr/daprd:1.18.0",
            "digest": "sha256:aaa",
        },
        {"role": "app", "containerName": "app", "image": "example/app:1", "digest": "sha256:bbb"},
        {"role": "app", "containerName": "side", "image": "example/side<&>:2"},
    ]


def test_extension_value_is_an_octet_string_of_go_json() -> None:
    extension = images.images_extension(POD)
    assert extension is not None
    assert extension.oid.dotted_string == "1.3.6.1.4.1.57683.100.1"
    body = images.go_json(images.container_images(POD))
    assert b"\\u003c\\u0026\\u003e" in body and b" " not in body.replace(b"example/", b"")
    assert extension.value[0] == 0x04
    assert extension.value.endswith(body)
    assert json.loads(body)[0]["role"] == "daprd"


def test_long_values_use_long_form_length() -> None:
    assert images.der_octet_string(b"x" * 5) == b"\x04\x05xxxxx"
    long = images.der_octet_string(b"x" * 300)
    assert long[:4] == b"\x04\x82\x01\x2c" and len(long) == 304


def test_no_containers_no_extension() -> None:
    assert images.images_extension({"spec": {}}) is None


def test_round_trip_through_a_certificate() -> None:
    key = new_key()
    extension = images.images_extension(POD)
    assert extension is not None
    cert = sign(builder(key.public_key()).add_extension(extension, critical=False), key)
    assert not cert.extensions.get_extension_for_oid(images.IMAGES_OID).critical
    assert images.parse_images_extension(cert) == images.container_images(POD)
