"""``shopgraph dev`` caches bytecode in its data directory when the environment forbids writing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from deploy.layout import PROJECT_ROOT

SCRIPT = """
import sys
from pathlib import Path
from deploy.bytecode import cache_bytecode_in
print(cache_bytecode_in(Path(sys.argv[1])))
sys.path.insert(0, sys.argv[2])
import cached_module
"""


def _run(tmp_path: Path, env: dict[str, str]) -> tuple[str, Path, Path]:
    sources = tmp_path / "src"
    sources.mkdir()
    (sources / "cached_module.py").write_text("VALUE = 1\n")
    data = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data), str(sources)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip(), sources, data


def test_forbidden_bytecode_is_cached_in_the_data_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"} | {"PYTHONDONTWRITEBYTECODE": "1"}
    turned_on, sources, data = _run(tmp_path, env)
    assert turned_on == "True"
    assert list((data / "pycache").rglob("cached_module*.pyc")), "no bytecode under the data directory"
    assert not (sources / "__pycache__").exists(), "bytecode written beside the sources"


def test_nothing_changes_when_python_may_write_bytecode(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    turned_on, sources, data = _run(tmp_path, env)
    assert turned_on == "False"
    assert not (data / "pycache").exists()
    assert list((sources / "__pycache__").glob("cached_module*.pyc"))
