"""The project as a package: pins in one place, the PaddleNLP-style entry points run as documented."""

import os
import subprocess
import sys
import tomllib

import pytest
from conftest import ROOT


def test_requirements_txt_and_pyproject_pin_the_same_versions():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    declared = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    lines = open(os.path.join(ROOT, "requirements.txt")).read().splitlines()
    required = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert required == declared, required ^ declared
    assert all("==" in r for r in required)


@pytest.mark.parametrize(
    "script",
    [
        "ernie_matching/train_pairwise.py",
        "cross_encoder/train_ce.py",
        "recall/train_batch_neg.py",
        "recall/train_simcse.py",
        "recall/build_index.py",
        "recall/run_recall.py",
        "recall/evaluate.py",
        "recall/search.py",
        "recall/export_model.py",
        "deploy/server.py",
        "deploy/serve.py",
        "deploy/python/run_system.py",
        "deploy/python/rpc_client.py",
        "deploy/export_to_serving.py",
        "deploy/python/predict.py",
        "datasets/prepare_kuake_qtr.py",
    ],
)
def test_entry_points_run_by_path_from_any_directory_without_pythonpath(script, tmp_path):
    """`python ernie_matching/train_pairwise.py ...` as PaddleNLP documents it: the project is installed
    (editable), so no sys.path edits and no PYTHONPATH are needed, from any working directory."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, script), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0 and "usage:" in p.stdout, p.stderr[-2000:]


def test_console_scripts_are_installed():
    bindir = os.path.dirname(sys.executable)
    for name in ("search-server", "search-serve", "search-export-to-serving"):
        p = subprocess.run([os.path.join(bindir, name), "--help"], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and "usage:" in p.stdout, (name, p.stderr[-1000:])


def test_components_meet_the_interfaces_between_them(served):
    """The engines, the index and the server's per-request model services satisfy the Protocols that
    core/search.py and the batcher are written against."""
    from core.engine import EncoderEngine, RankerEngine
    from core.index import MilvusIndex
    from core.interfaces import BatchEngine, Embedder, Index, Scorer
    from deploy.protocols.search import _Bound

    assert isinstance(served["engine"], Scorer) and isinstance(served["engine"], BatchEngine)
    assert isinstance(served["encoder"], Embedder) and isinstance(served["encoder"], BatchEngine)
    assert issubclass(RankerEngine, Scorer) and issubclass(EncoderEngine, Embedder)
    assert issubclass(MilvusIndex, Index) and issubclass(_Bound, Scorer) and issubclass(_Bound, Embedder)
