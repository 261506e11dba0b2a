"""Generated docs must not go stale: docs/cli.md (from --help), docs/specs.md (from
xpcli.spec) and the table of docs/importers.md (from xpcli.importers.REGISTRY)."""

from __future__ import annotations

import subprocess

import pytest
from conftest import PYTHON, ROOT


def test_cli_reference_is_fresh() -> None:
    result = subprocess.run([PYTHON, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr + " (run `make docs`)"


@pytest.mark.parametrize("script", ["gen_spec_docs.py", "gen_importer_docs.py"])
def test_generated_reference_is_fresh(script: str) -> None:
    result = subprocess.run([PYTHON, str(ROOT / "scripts" / script), "--check"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr + " (run `make docs`)"
