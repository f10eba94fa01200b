"""Command-line flags shared by the trainers (PaddleNLP neural_search names)."""

import argparse


def ema_decay(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be from 0 (off) to below 1, got {text}")
    return value


def training_parser(description: str, default_model: str = "multilingual-e5-small") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="device to train on")
    p.add_argument("--save_dir", default="./checkpoint", help="where checkpoints model_N/ are written")
    p.add_argument(
        "--max_seq_length",
        "--max_seq_len",
        dest="max_seq_length",
        type=int,
        default=128,
        help="longest (query, title) encoding; longer pairs are truncated",
    )
    p.add_argument("--batch_size", type=int, default=32, help="batch size per process")
    p.add_argument("--learning_rate", type=float, default=5e-5)
    p.add_argument("--weight_decay", type=float, default=0.0, help="AdamW decay (not on bias/norm weights)")
    p.add_argument(
        "--freeze_embeddings",
        action="store_true",
        help="keep the backbone's word embeddings as loaded (no gradient, no optimizer state for them): "
        "faster steps on a large vocabulary, and tokens unseen in training keep the same space as seen ones",
    )
    p.add_argument(
        "--ema_decay",
        type=ema_decay,
        default=0.0,
        help="also keep an exponential moving average of the trained weights (e.g. 0.999; 0: off): every "
        "checkpoint model_N gets a sibling model_N_ema with the averaged weights, to export like any checkpoint",
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max_steps", type=int, default=-1, help="stop after this many steps (-1: all epochs)")
    p.add_argument("--warmup_proportion", type=float, default=0.0, help="linear warm-up share of all steps")
    p.add_argument("--logging_steps", type=int, default=10)
    p.add_argument("--eval_step", type=int, default=200, help="evaluate every N steps (0: never)")
    p.add_argument("--init_from_ckpt", default=None, help="checkpoint dir or model_state.pdparams to resume from")
    p.add_argument(
        "--init_weights",
        default=None,
        help="start from a trained model's weights (checkpoint dir or .pdparams) at step 0 with a fresh "
        "optimizer: fine-tune it on another objective or data (--init_from_ckpt resumes a run instead)",
    )
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument(
        "--model_name_or_path",
        default=default_model,
        help="local model directory or PaddleNLP name (default: the embedded %(default)s)",
    )
    p.add_argument(
        "--pooling",
        choices=["auto", "cls", "mean"],
        default="auto",
        help="pooled vector: the backbone's pooler (cls) or the token mean; auto reads the model config",
    )
    p.add_argument("--dropout", type=float, default=None, help="dropout before the scoring layer (default 0.1)")
    p.add_argument(
        "--logdir",
        default=None,
        help="VisualDL log directory (default: SAVE_DIR/vdl_log); curves.png is written there at the end",
    )
    return p
