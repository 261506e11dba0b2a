"""Many hosts on one shared file system: one file per writer process where the runs
directory is on a network file system (found in /proc/mounts), read back as one run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import T0, run_python

from xpcli import Run, load, writer
from xpcli.dataset import load as load_at
from xpcli.errors import UsageError


def _mounts(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "mounts"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_the_file_system_is_the_one_of_the_longest_mount_point_above(tmp_path: Path) -> None:
    mounts = _mounts(
        tmp_path,
        "/dev/sda1 / ext4 rw 0 0",
        "server:/export /mnt/shared nfs4 rw,relatime 0 0",
        "server:/other /mnt/shared\\040space nfs rw 0 0",
        "tmpfs /mnt/shared/tmp tmpfs rw 0 0",
    )
    assert writer.filesystem_type("/home/me/runs", str(mounts)) == "ext4"
    assert writer.filesystem_type("/mnt/shared/team/runs", str(mounts)) == "nfs4"
    assert writer.filesystem_type("/mnt/shared", str(mounts)) == "nfs4"
    assert writer.filesystem_type("/mnt/sharedx/runs", str(mounts)) == "ext4"
    assert writer.filesystem_type("/mnt/shared space/runs", str(mounts)) == "nfs"
    assert writer.filesystem_type("/mnt/shared/tmp/runs", str(mounts)) == "tmpfs"
    assert writer.filesystem_type("/x", str(tmp_path / "missing")) is None


@pytest.fixture
def on_nfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A runs directory that /proc/mounts (a copy of ours) says is on NFS."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setattr(writer, "MOUNTS", str(_mounts(
        tmp_path, "/dev/sda1 / ext4 rw 0 0", f"server:/export {runs} nfs4 rw 0 0")))
    monkeypatch.delenv("XP_LAYOUT", raising=False)
    return runs


def test_on_nfs_each_writer_process_gets_a_file_of_its_own(on_nfs: Path) -> None:
    run = Run(on_nfs, "r1", time=T0, flush_seconds=0)
    run.track(1.0, "loss", step=0, time=T0)
    run.close(time=T0 + 1)
    files = sorted(p.relative_to(on_nfs) for p in on_nfs.rglob("*.jsonl"))
    assert len(files) == 1 and files[0].parent == Path("r1")
    assert run.path == str(on_nfs / files[0])
    assert load(on_nfs).runs.collect().get_column("status").to_list() == ["finished"]
    # A layout asked for explicitly wins over the mount table.
    other = Run(on_nfs, "r2", layout="run", flush_seconds=0)
    other.close()
    assert other.path == str(on_nfs / "r2.jsonl")


def test_a_local_folder_keeps_one_file_per_run(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "MOUNTS", str(_mounts(tmp_path, "/dev/sda1 / ext4 rw 0 0")))
    monkeypatch.delenv("XP_LAYOUT", raising=False)
    run = Run(tmp_path / "runs" / "not-yet-made", "r1", flush_seconds=0)
    run.close()
    assert run.path == str(tmp_path / "runs" / "not-yet-made" / "r1.jsonl")


def test_xp_layout_sets_the_layout_and_a_bad_one_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XP_LAYOUT", "writer")
    run = Run(tmp_path, "r1", flush_seconds=0)
    run.close()
    assert Path(run.path).parent == tmp_path / "r1"
    monkeypatch.setenv("XP_LAYOUT", "host")
    with pytest.raises(UsageError, match="XP_LAYOUT='host': expected run or writer"):
        Run(tmp_path, "r2")
    monkeypatch.delenv("XP_LAYOUT")
    with pytest.raises(UsageError, match="layout='file'"):
        Run(tmp_path, "r3", layout="file")


def test_a_run_resumed_by_another_writer_process_is_resumed(on_nfs: Path) -> None:
    Run(on_nfs, "r1", time=T0, flush_seconds=0).close(time=T0 + 1)
    again = Run(on_nfs, "r1", time=T0 + 100, flush_seconds=0)
    again.close(time=T0 + 101)
    assert len(list((on_nfs / "r1").glob("*.jsonl"))) == 2
    row = load(on_nfs).runs.collect().row(0, named=True)
    assert row["created"].timestamp() == T0 and row["resumed"].timestamp() == T0 + 100
    assert row["status"] == "finished" and row["ended"].timestamp() == T0 + 101


def test_the_writers_file_is_the_runs_heartbeat(on_nfs: Path) -> None:
    run = Run(on_nfs, "r1", time=T0, flush_seconds=0)
    run.track(1.0, "loss", step=0, time=T0 + 1)
    run.flush()
    os.utime(run.path, (T0 + 500, T0 + 500))  # the last sign of life: the file's mtime
    row = load_at(on_nfs, now=T0 + 510).runs.collect().row(0, named=True)
    assert row["status"] == "running"
    assert row["last_activity"].timestamp() == T0 + 500
    run.close()


_RANK = """
import sys
from xpcli import Run
runs, rank = sys.argv[1], int(sys.argv[2])
run = Run(runs, "shared", params={"lr": 0.1}, flush_seconds=0, time=1767225600.0 + rank)
for step in range(100):
    # Interleaved times: rank 0 logs at even, rank 1 at odd tenths of a second.
    run.track(float(rank * 1000 + step), "loss", step=step,
              time=1767225600.0 + 10 + step * 0.2 + rank * 0.1)
run.close(time=1767225700.0 + rank)
"""


@pytest.mark.slow
def test_two_hosts_writing_one_run_write_two_files_read_in_logging_order(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for rank in (0, 1):
        result = run_python(_RANK, str(runs), str(rank),
                            env={"XP_LAYOUT": "writer", "XP_HOST": f"node-{rank}"})
        assert result.returncode == 0, result.stderr
    assert len(list((runs / "shared").glob("*.jsonl"))) == 2
    dataset = load(runs)
    points = dataset.points.sort("time").collect()
    assert points.height == 200
    # Logging order is time order: the values alternate between the ranks.
    expected = [rank * 1000 + step for step in range(100) for rank in (0, 1)]
    assert points.get_column("value").to_list() == expected
    from xpcli.analysis.select import select_runs

    table = select_runs(dataset, metrics=["loss@last", "loss@first"])
    row = table.row(0, named=True)
    assert row["loss"] == 1099.0 and row["loss@first"] == 0.0  # rank 1 logged last


def test_xp_tail_follows_every_writer_file_of_a_run_as_they_appear(on_nfs: Path) -> None:
    from xpcli.follow import Tail

    first = Run(on_nfs, "r1", time=T0, flush_seconds=0)
    first.track(1.0, "loss", step=0, time=T0)
    first.flush()
    tail = Tail(str(on_nfs), "r1")
    assert [p["value"] for p in tail.start(5)] == [1.0]
    second = Run(on_nfs, "r1", time=T0 + 1, flush_seconds=0)  # another writer process
    second.track(2.0, "loss", step=1, time=T0 + 2)
    second.flush()
    assert [p["value"] for p in tail.poll()] == [2.0]
    first.close()
    second.close()
    assert tail.poll() == [] and tail.ended
