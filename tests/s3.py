"""A moto S3 server on loopback for the tests (PyPI ``moto[server]``): the object
store of multi-host setups, as Metaflow's S3 datastore sees it."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import free_port

BUCKET = "mf-temporal-config"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_server(directory: Path) -> Iterator[str]:
    """A moto S3 server on a free loopback port, with the bucket; its URL (its log
    goes to ``directory``)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_file = directory / "moto.log"
    log = log_file.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_file.read_text()
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        client(url).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def s3_endpoint(tmp_path):
    """A moto S3 server for one test: its URL."""
    with moto_server(tmp_path) as url:
        yield url


def client(url: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def keys(url: str, prefix: str) -> list[str]:
    keys = []
    for page in (
        client(url)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=BUCKET, Prefix=prefix)
    ):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys
