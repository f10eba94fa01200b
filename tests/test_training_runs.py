"""Training as users run it: CLI errors, multi-process data parallel, interruption and resume."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, run


def digest_of(ckpt):
    import paddle

    from core.trainer import weights_digest

    class Holder:
        def __init__(self, state):
            self._s = state

        def state_dict(self):
            return self._s

    return weights_digest(Holder(paddle.load(os.path.join(ckpt, "model_state.pdparams"))))


@pytest.mark.parametrize(
    "script,flag,key",
    [
        ("ernie_matching/train_pairwise.py", "--train_file", "pair_train"),
        ("cross_encoder/train_ce.py", "--train_set", "rank_train"),
    ],
)
def test_two_process_data_parallel(tmp_path, small, tiny_model, script, flag, key):
    save, logs = tmp_path / "ckpt", tmp_path / "log"
    run(
        [
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            "2",
            "--log_dir",
            str(logs),
            script,
            flag,
            small[key],
            "--test_file",
            small["dev"],
            "--model_name_or_path",
            tiny_model,
            "--save_dir",
            str(save),
            "--batch_size",
            "8",
            "--epochs",
            "1",
            "--max_steps",
            "6",
            "--eval_step",
            "0",
            "--save_step",
            "0",
            "--max_seq_length",
            "32",
            "--logging_steps",
            "2",
        ],
        timeout=300,
    )
    digests = {}
    for r in (0, 1):
        text = open(logs / f"workerlog.{r}", encoding="utf-8").read()
        line = [l for l in text.splitlines() if l.startswith(f"rank {r} weights digest:")]
        assert line, text[-2000:]
        digests[r] = line[0].split(":")[-1].strip()
        # only rank 0 logs progress
        assert ("global step 6" in text) == (r == 0)
    assert digests[0] == digests[1]
    ckpts = sorted(d for d in os.listdir(save) if d != "vdl_log")
    assert ckpts == ["model_6"]
    assert digest_of(save / "model_6") == digests[0]


def train_cmd(small, tiny_model, save, extra=()):
    return [
        sys.executable,
        "ernie_matching/train_pairwise.py",
        "--train_file",
        small["pair_train"],
        "--test_file",
        small["dev"],
        "--model_name_or_path",
        tiny_model,
        "--save_dir",
        str(save),
        "--batch_size",
        "8",
        "--epochs",
        "8",
        "--eval_step",
        "0",
        "--save_step",
        "4",
        "--max_seq_length",
        "32",
        "--learning_rate",
        "1e-3",
        "--dropout",
        "0.0",
        "--logging_steps",
        "4",
        *extra,
    ]


def test_interrupt_saves_and_resume_gives_the_same_model(tmp_path, small, tiny_model):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", GLOG_minloglevel="2")
    # uninterrupted reference
    full = tmp_path / "full"
    subprocess.run(train_cmd(small, tiny_model, full), cwd=ROOT, env=env, check=True, capture_output=True)
    final = sorted((d for d in os.listdir(full) if d.startswith("model_")), key=lambda d: int(d.split("_")[1]))[-1]
    # interrupted at some step after the first checkpoint
    part = tmp_path / "part"
    p = subprocess.Popen(
        train_cmd(small, tiny_model, part),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 120
    while not (part / "model_8").exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 130, out[-2000:]
    assert "interrupted: saved" in out
    saved = [d for d in os.listdir(part) if d.startswith("model_")]
    last = max(saved, key=lambda d: int(d.split("_")[1]))
    step = int(last.split("_")[1])
    assert 8 <= step < int(final.split("_")[1])
    # resume
    r = subprocess.run(
        train_cmd(small, tiny_model, part, ["--init_from_ckpt", str(part / last)]),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed from" in r.stdout and f"at global step {step}" in r.stdout
    assert f"global step {step} " not in r.stdout  # no step is run twice
    import paddle

    a = paddle.load(str(full / final / "model_state.pdparams"))
    b = paddle.load(str(part / final / "model_state.pdparams"))
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-5, err_msg=k)


@pytest.mark.parametrize(
    "model,expect",
    [
        ("ernie-3.0-medium-zh", "PaddleNLP's model hub could not provide it"),
        ("/no/such/dir", "model directory not found"),
    ],
)
def test_unreachable_model_says_to_pass_a_local_directory(small, model, expect):
    p = run(
        [
            "ernie_matching/train_pairwise.py",
            "--train_file",
            small["pair_train"],
            "--test_file",
            small["dev"],
            "--model_name_or_path",
            model,
            "--save_dir",
            "/tmp/unused",
        ],
        check=False,
        timeout=120,
    )
    assert p.returncode == 2
    assert expect in p.stderr and "local model directory" in p.stderr and "--model_name_or_path" in p.stderr
    assert "Traceback" not in p.stderr


def test_bad_training_file_names_file_and_line(tmp_path, small, tiny_model):
    bad = tmp_path / "bad.csv"
    bad.write_text("query\ttitle\tlabel\n感冒\t感冒吃什么\t1\n发烧\t\t0\n", encoding="utf-8")
    p = run(
        [
            "cross_encoder/train_ce.py",
            "--train_set",
            str(bad),
            "--test_file",
            small["dev"],
            "--model_name_or_path",
            tiny_model,
            "--save_dir",
            str(tmp_path / "c"),
        ],
        check=False,
        timeout=120,
    )
    assert p.returncode == 2
    assert f"{bad}:3: column 'title' is empty" in p.stderr
    dev = tmp_path / "dev.csv"
    dev.write_text("query\ttitle\tlabel\n感冒\t感冒吃什么\t3\n", encoding="utf-8")
    p = run(
        [
            "ernie_matching/train_pairwise.py",
            "--train_file",
            small["pair_train"],
            "--test_file",
            str(dev),
            "--model_name_or_path",
            tiny_model,
            "--save_dir",
            str(tmp_path / "c"),
        ],
        check=False,
        timeout=120,
    )
    assert p.returncode == 2 and f"{dev}:2: column 'label' is 3, allowed values are 0, 1" in p.stderr
    assert not (tmp_path / "c").exists()


def test_empty_text_is_rejected_when_scoring(tiny_model):
    from core.backbone import load_tokenizer
    from core.data import PairEncoder
    from core.errors import DataError

    enc = PairEncoder(load_tokenizer(tiny_model), 32)
    with pytest.raises(DataError, match="query is empty"):
        enc("  ", "感冒")
    with pytest.raises(DataError, match="title is empty"):
        enc("感冒", "")
