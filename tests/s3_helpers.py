"""Local object-storage servers for the object-storage tests (moto's S3 server, Azurite
for Azure Blob, gcp-storage-emulator for GCS), and a proxy that stalls an upload half-way
(to kill a writer in the middle of one)."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

BUCKET = "xp-test-bucket"


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's standalone S3 server on a free loopback port, with :data:`BUCKET` made;
    yields its endpoint URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="test", aws_secret_access_key="test"
                     ).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    """The standard environment that points obstore (and boto3) at ``endpoint``."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true"}


class StallingProxy:
    """A TCP proxy to ``upstream`` that forwards everything until a request whose bytes
    contain ``marker`` (an object name) starts: it forwards that request's first bytes
    (the request line and part of its headers), sets :attr:`stalled`, and forwards
    nothing more from that connection. The upload is then in flight, never finished."""

    def __init__(self, upstream: str, marker: bytes) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.marker = marker
        self.stalled = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upload: bool) -> None:
        seen = b""
        stalled = False
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if stalled:
                    continue  # read and dropped: the writer goes on sending, in vain
                if upload:
                    window = seen + data  # the marker may straddle two reads
                    at = window.find(self.marker)
                    seen = window[-len(self.marker):]
                    if at >= 0:
                        # Forward up to a little past the object name, then nothing.
                        keep = max(0, at - (len(window) - len(data)) + len(self.marker) + 32)
                        sink.sendall(data[:keep])
                        stalled = True
                        self.stalled.set()
                        continue
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.closing = True
        self.listener.close()


#: Azurite's account and key: the emulator's published development credentials.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBe"
               "ksoGMGw==")
CONTAINER = "xp-test-container"


@contextlib.contextmanager
def azurite_server() -> Iterator[str]:
    """Azurite's Blob service (``azurite-blob``, from npm) on a free loopback port, in
    memory, with :data:`CONTAINER` made; yields its endpoint URL."""
    binary = shutil.which("azurite-blob")
    assert binary is not None
    proc = subprocess.Popen([binary, "--blobHost", "127.0.0.1", "--blobPort", "0",
                             "--inMemoryPersistence", "--silent", "--disableTelemetry",
                             "--skipApiVersionCheck"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        endpoint = None
        for line in proc.stdout:  # the line saying where it listens, then it serves
            if "listens on " in line:
                endpoint = line.rsplit("listens on ", 1)[1].strip()
                break
        assert endpoint is not None, "azurite-blob ended before it listened"
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # never blocks it
        create_container(endpoint, CONTAINER)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait()


def create_container(endpoint: str, name: str) -> None:
    """Create a container on Azurite: one request signed with its Shared Key (obstore, like
    the store itself, reads and writes blobs but does not make containers)."""
    headers = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    canonical = "".join(f"{key}:{value}\n" for key, value in sorted(headers.items()))
    # Path-style URLs of the emulator name the account twice in the signed resource.
    resource = f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
    signed = "PUT\n" + "\n" * 11 + canonical + resource
    digest = hmac.new(base64.b64decode(AZURITE_KEY), signed.encode(), hashlib.sha256).digest()
    request = urllib.request.Request(
        f"{endpoint}/{AZURITE_ACCOUNT}/{name}?restype=container", method="PUT",
        headers={**headers, "Content-Length": "0",
                 "Authorization": f"SharedKey {AZURITE_ACCOUNT}:"
                                  f"{base64.b64encode(digest).decode()}"})
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 201


def azure_env(endpoint: str) -> dict[str, str]:
    """The environment that points obstore at Azurite: the emulator switch xp passes on,
    and the emulator's address, which obstore reads from the environment itself."""
    return {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": endpoint}


@contextlib.contextmanager
def gcs_emulator(bucket: str, folder: Path) -> Iterator[dict[str, str]]:
    """gcp-storage-emulator on a free loopback port, in memory, with ``bucket`` made;
    yields the environment that points obstore at it: a service-account file whose
    ``gcs_base_url`` is the emulator and ``disable_oauth`` true (obstore's way to reach
    a GCS emulator)."""
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", 0, in_memory=True, default_bucket=bucket)
    server.start()
    try:
        port = server._api._httpd.server_port  # the port the OS gave
        account = folder / "service-account.json"
        account.write_text(json.dumps({"gcs_base_url": f"http://127.0.0.1:{port}",
                                       "disable_oauth": True, "client_email": "",
                                       "private_key": "", "private_key_id": ""}))
        yield {"GOOGLE_SERVICE_ACCOUNT": str(account)}
    finally:
        server.stop()


def download(url: str, folder: Path) -> set[str]:
    """Every object under ``url`` into ``folder`` (same relative names); their names."""
    import obstore

    from xpcli import remote

    store = remote.open_store(url)
    keys = {m["path"] for batch in obstore.list(store) for m in batch}
    for key in keys:
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(bytes(obstore.get(store, key).bytes()))
    return keys


def files_under(folder: Path) -> set[str]:
    """The files below ``folder``, as relative names with ``/``."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
