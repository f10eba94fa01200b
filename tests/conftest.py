import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KUAKE = os.environ.get("KUAKE_DIR", os.path.join(ROOT, "..", "shared", "datasets", "kuake_qtr"))
sys.path.insert(0, ROOT)


def run(args, env=None, timeout=600, check=True):
    """Run a project command with the venv's Python; returns CompletedProcess (text)."""
    e = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", GLOG_minloglevel="2", PYTHONWARNINGS="ignore")
    e.update(env or {})
    cmd = [sys.executable, *args] if args[0].endswith(".py") or args[0] == "-m" else args
    p = subprocess.run(cmd, cwd=ROOT, env=e, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def head(src, dst, n):
    """Copy the first n lines (header included) of a file."""
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i >= n:
                break
            g.write(line)
    return str(dst)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    run(["datasets/prepare_kuake_qtr.py", "--src", KUAKE, "--out", str(out)])
    return out


@pytest.fixture(scope="session")
def small(data_dir, tmp_path_factory):
    """Small slices of the real files, for fast training runs."""
    d = tmp_path_factory.mktemp("small")
    return {
        "pair_train": head(data_dir / "sort/train_pairwise.csv", d / "train_pairwise.csv", 129),
        "dev": head(data_dir / "sort/dev_pairwise.csv", d / "dev_pairwise.csv", 97),
        "rank_train": head(data_dir / "rank/train.csv", d / "rank_train.csv", 161),
        "test": head(data_dir / "sort/test_pairwise.csv", d / "test_pairwise.csv", 40),
    }


@pytest.fixture(scope="session")
def tiny_model(data_dir, tmp_path_factory):
    """A 2-layer ERNIE with random weights and a character vocabulary of the data (no dropout)."""
    from core.data import read_labeled_pairs
    from core.tiny import make_tiny_ernie

    rows = read_labeled_pairs(str(data_dir / "rank/train.csv")) + read_labeled_pairs(str(data_dir / "sort/dev_pairwise.csv"))
    d = tmp_path_factory.mktemp("tiny_ernie")
    return make_tiny_ernie(str(d), [r["query"] + r["title"] for r in rows], dropout=0.0)
