"""docs/cli.md (from --help) and docs/specs.md (from xpcli.spec) are generated and must not
go stale."""

from __future__ import annotations

import subprocess

from conftest import PYTHON, ROOT


def test_cli_reference_is_fresh() -> None:
    result = subprocess.run([PYTHON, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr + " (run `make docs`)"


def test_spec_reference_is_fresh() -> None:
    result = subprocess.run([PYTHON, str(ROOT / "scripts" / "gen_spec_docs.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr + " (run `make docs`)"
