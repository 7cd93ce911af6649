"""An S3-compatible server (moto in server mode) on 127.0.0.1 for the shared-lake tests."""

from __future__ import annotations

import logging
import secrets

import pytest
from s3_server import S3_ENV, free_port


@pytest.fixture(scope="session")
def s3_server():
    """The endpoint URL of a moto S3 server running for the whole session."""
    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """This test's environment pointed at the server; returns the endpoint URL."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    return s3_server


@pytest.fixture
def bucket(s3_env):
    """A fresh, empty bucket on the server; its name."""
    import pyarrow.fs as pafs

    name = f"fleet-{secrets.token_hex(4)}"
    pafs.S3FileSystem(endpoint_override=s3_env, allow_bucket_creation=True).create_dir(name)
    return name
