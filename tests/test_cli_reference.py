"""docs/cli.md is generated from --help and must not go stale."""

from __future__ import annotations

import subprocess

from conftest import PYTHON, ROOT


def test_cli_reference_is_fresh() -> None:
    result = subprocess.run([PYTHON, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr + " (run `make docs`)"
