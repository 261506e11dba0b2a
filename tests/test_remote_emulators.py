"""Runs on Azure Blob and GCS through the same code as S3 (xpcli.remote, obstore), against
local emulators: Azurite (npm; .ci/run installs it) and gcp-storage-emulator (PyPI, dev
extra). Azurite serves everything xp needs; gcp-storage-emulator cannot serve obstore,
and the last test pins exactly why (docs/scale.md)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("obstore", reason="the s3 extra (obstore) is not installed")

from conftest import SAMPLE_RUNS  # noqa: E402
from s3_helpers import (  # noqa: E402
    CONTAINER,
    azure_env,
    azurite_server,
    download,
    files_under,
    gcs_emulator,
)

from xpcli import Run, load, remote  # noqa: E402
from xpcli.cache import cache_home  # noqa: E402
from xpcli.cli import cli  # noqa: E402
from xpcli.errors import WriteError  # noqa: E402
from xpcli.export import export  # noqa: E402

needs_azurite = pytest.mark.skipif(
    shutil.which("azurite-blob") is None,
    reason="Azurite is not installed (npm install -g azurite; .ci/run installs Node.js and "
    "Azurite where it can)")


@pytest.fixture(scope="module")
def azurite() -> Iterator[str]:
    with azurite_server() as endpoint:
        yield endpoint


@pytest.fixture
def az(azurite: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A fresh runs URL on Azurite; the environment points at it."""
    for key, value in azure_env(azurite).items():
        monkeypatch.setenv(key, value)
    return f"az://{CONTAINER}/{request.node.name}"


def _names(url: str) -> list[str]:
    import obstore

    return sorted(m["path"] for batch in obstore.list(remote.open_store(url)) for m in batch)


def _write(url: str, run: str, lr: float, values: list[float]) -> str:
    """A run written in two flushes; the writer's id."""
    with Run(url, run, params={"lr": lr}, flush_seconds=0, catch_sigterm=False) as writer:
        for step, value in enumerate(values):
            writer.track(value, "loss", step=step)
            if step == len(values) // 2:
                writer.flush()
        return str(writer._segments.writer)


@needs_azurite
def test_azure_segments_are_written_put_if_absent_and_read_back(az: str) -> None:
    import obstore
    from obstore.exceptions import AlreadyExistsError

    values = [1.0 / (k + 1) for k in range(10)]
    writer = _write(az, "r1", 0.1, values)
    # The run record, the first flush, the rest with the status at close.
    assert _names(az) == [f"r1/{writer}-{n:08d}.jsonl" for n in range(3)]
    with pytest.raises(AlreadyExistsError):  # what the writer relies on: never overwrite
        obstore.put(remote.open_store(az), f"r1/{writer}-00000000.jsonl", b"{}\n",
                    mode="create")
    dataset = load(az)
    points = dataset.points.collect().sort("step")
    assert points["value"].to_list() == values and points["step"].to_list() == list(range(10))
    runs = dataset.runs.collect()
    assert runs.select("run", "lr", "status").rows() == [("r1", 0.1, "finished")]


@needs_azurite
def test_azure_reader_downloads_only_new_objects(az: str) -> None:
    _write(az, "r1", 0.1, [0.5, 0.4, 0.3])
    first = remote.sync(az, cache_home())
    assert (first.listed, first.downloaded) == (3, 3)
    assert remote.sync(az, cache_home()).downloaded == 0
    _write(az, "r2", 0.01, [0.9, 0.8, 0.7, 0.6])
    second = remote.sync(az, cache_home())
    assert (second.listed, second.downloaded) == (6, 3)
    result = CliRunner().invoke(cli, ["select", "--runs", az, "-m", "loss@last,loss@max",
                                      "-p", "lr", "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == ["r1,0.1,0.3,0.5", "r2,0.01,0.6,0.9"]


@needs_azurite
def test_azure_compact_to_writes_the_dataset_a_folder_gets(az: str, tmp_path: Path) -> None:
    import polars as pl

    local = tmp_path / "local"
    export(load(str(SAMPLE_RUNS)), str(local), buckets=2)
    export(load(str(SAMPLE_RUNS)), az, buckets=2)
    keys = download(az, tmp_path / "down")
    assert keys == files_under(local)
    for key in keys - {"_xp_dataset.json"}:
        assert pl.read_parquet(tmp_path / "down" / key).equals(pl.read_parquet(local / key))


def test_gcs_emulator_cannot_serve_obstore_and_xp_says_so_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """obstore reaches the emulator (a service-account file with ``gcs_base_url`` and
    ``disable_oauth``), but speaks GCS's XML API, of which gcp-storage-emulator has only
    part: listing (``GET /bucket?list-type=2``) answers 501 Not Implemented, an upload
    (``PUT /bucket/key``) answers without an ETag header, a download without a
    Last-Modified header. xp turns each into one line naming the URL."""
    pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator (dev extra) is "
                        "not installed")
    import obstore

    # No "-" in the bucket: obstore escapes it (%2D), which the emulator does not route.
    with gcs_emulator("xpgcs", tmp_path) as env:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        url = "gs://xpgcs/runs"
        store = remote.open_store(url)
        with pytest.raises(Exception, match="ETag Header missing from response"):
            obstore.put(store, "r1/w-00000000.jsonl", b"{}\n")
        with pytest.raises(Exception, match="Last-Modified Header missing from response"):
            obstore.get(store, "r1/w-00000000.jsonl")  # the upload above did land
        result = CliRunner().invoke(cli, ["metrics", "--runs", url])
        assert result.exit_code == 1
        # (The emulator, in this process, logs each request it refuses on stderr too.)
        ours = [line for line in result.stderr.splitlines()
                if not line.startswith("Method not implemented")]
        assert len(ours) == 1 and ours[0].startswith(f"Error: cannot list {url}: ")
        assert "501 Not Implemented" in ours[0]
        with pytest.raises(WriteError, match=f"^cannot list {url}/r2/: .*501 Not Implemented"):
            Run(url, "r2", flush_seconds=0, catch_sigterm=False)
