"""A local S3-compatible server for the object-storage tests, and a proxy that stalls an
upload half-way (to kill a writer in the middle of one)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

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
