"""The training loop shared by every trainer: single process or `paddle.distributed.launch`.

AdamW (no decay on bias and norm weights), linear warm-up then linear decay, dynamic padding,
deterministic shuffling (so a resumed run sees the same batches), log lines with loss, speed and
ETA, periodic evaluation and atomic checkpoints on rank 0 only. Ctrl-C or SIGTERM saves a
checkpoint of the current step before exiting; `--init_from_ckpt` resumes from one.
"""

import math
import os
import random
import signal
import time
from collections.abc import Callable, Sequence

import numpy as np

from . import checkpoint
from .data import batch_indices, num_batches
from .errors import DataError


def set_seed(seed: int) -> None:
    import paddle

    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def freeze_word_embeddings(model) -> int:
    """Stop the gradient of every word-embedding matrix in `model` (BERT-style `word_embeddings`).
    Returns how many weights were frozen; a model without one is a DataError (nothing to freeze)."""
    frozen = 0
    for name, param in model.named_parameters():
        if name.endswith("word_embeddings.weight"):
            param.stop_gradient = True
            frozen += int(np.prod(param.shape))
    if not frozen:
        raise DataError("--freeze_embeddings: this model has no word_embeddings weight to freeze")
    return frozen


class WeightAverage:
    """An exponential moving average of a layer's trained weights (--ema_decay): after step t,
    avg = d * avg + (1 - d) * weights with d = min(decay, (1 + t) / (10 + t)), the warm-up of
    TensorFlow's ExponentialMovingAverage (num_updates), so the starting weights fade within the
    first steps. The frozen weights are kept as they are."""

    def __init__(self, layer, decay: float):
        self.layer, self.decay = layer, decay
        self.params = {n: p for n, p in layer.named_parameters() if not p.stop_gradient}
        self.avg = {n: p.detach().clone() for n, p in self.params.items()}

    def update(self, step: int) -> None:
        import paddle

        d = min(self.decay, (1 + step) / (10 + step))
        with paddle.no_grad():
            for n, p in self.params.items():
                self.avg[n].scale_(d).add_(p.detach() * (1 - d))

    def load(self, state: dict) -> None:
        missing = sorted(set(self.avg) - set(state))
        if missing:
            raise DataError(f"the checkpoint's weight average lacks {len(missing)} weights, e.g. {missing[:3]}")
        for n in self.avg:
            self.avg[n] = state[n].detach().clone()

    def state_dict(self) -> dict:
        """The layer's state dict with the averaged weights in place of the trained ones."""
        return {**self.layer.state_dict(), **self.avg}


def init_device(device: str = "cpu") -> tuple[int, int]:
    """Set the device and, under paddle.distributed.launch, the process group. Returns (rank, world)."""
    import paddle
    import paddle.distributed as dist

    if device == "gpu" and not paddle.is_compiled_with_cuda():
        print("[warning] this Paddle build has no CUDA: training on cpu")
        device = "cpu"
    paddle.set_device(device)
    world = dist.get_world_size()
    if world > 1:
        dist.init_parallel_env()
    return dist.get_rank(), world


class Curves:
    """Training curves for VisualDL (`visualdl --logdir DIR`, as PaddleNLP's trainers write them), and a
    PNG of the same curves (curves.png in DIR) when training ends."""

    def __init__(self, logdir):
        from visualdl import LogWriter

        self.logdir = logdir
        os.makedirs(logdir, exist_ok=True)
        self.writer = LogWriter(logdir=logdir)
        self.history = {}

    def add(self, tag: str, step: int, value: float) -> None:
        value = float(value)
        self.writer.add_scalar(tag=tag, step=int(step), value=value)
        self.history.setdefault(tag, []).append((int(step), value))

    def close(self) -> None:
        self.writer.close()
        if not self.history:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        tags = sorted(self.history)
        fig, axes = plt.subplots(1, len(tags), figsize=(4 * len(tags), 3.2), squeeze=False)
        for ax, tag in zip(axes[0], tags):
            steps, values = zip(*self.history[tag])
            ax.plot(steps, values, "-" if len(steps) > 20 else "o-")
            ax.set_title(tag)
            ax.set_xlabel("step")
        fig.tight_layout()
        fig.savefig(os.path.join(self.logdir, "curves.png"), dpi=100)
        plt.close(fig)


def finish_parallel() -> None:
    """Leave data-parallel training together, in order.

    Without this, the other ranks exit while rank 0 still writes the last checkpoint, and each
    process tears its gloo/store connections down in the interpreter's exit order: rank 0 then
    sometimes aborts (SIGABRT, exit -6) after "training done". A barrier (every rank waits for rank
    0's save) and an explicit destroy of the process group, while the interpreter is still whole,
    make the exit deterministic."""
    import paddle.distributed as dist

    dist.barrier()
    dist.destroy_process_group()


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def weights_digest(model: object) -> str:
    """SHA-256 over all parameters (names, shapes and float32 bytes) of a model."""
    import hashlib

    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(value.numpy()).tobytes())
    return h.hexdigest()[:16]


class _Interrupted(Exception):
    pass


def train(
    model: object,
    dataset: Sequence,
    collate: Callable,
    loss_fn: Callable,
    args: object,
    *,
    tokenizer: object = None,
    backbone_config: object = None,
    meta: dict | None = None,
    evaluate: Callable | None = None,
    metric_name: str = "auc",
    rank: int = 0,
    world_size: int = 1,
    amp_scale: float | None = None,
    save_model: object = None,
    load_init_weights: Callable | None = None,
) -> dict:
    """Train `model` on `dataset` (indexable, items fed to `collate`).

    loss_fn(model_or_dp, tensors) -> scalar loss. evaluate(model) -> float (higher is better).
    args needs: batch_size, epochs, learning_rate, weight_decay, warmup_proportion, seed,
    logging_steps, eval_step, save_step, save_dir, init_from_ckpt, max_steps and init_weights (optional).
    amp_scale: run forward passes under paddle.amp.auto_cast with a GradScaler (GPU).
    save_model: the layer whose weights checkpoints hold (default `model`; e.g. the encoder
    inside a training-loss wrapper), also the one `--init_from_ckpt` loads and `evaluate` gets.
    load_init_weights(layer, path) -> file read: how `--init_weights` is loaded into that layer (default
    checkpoint.load_params; e.g. a checkpoint of another model kind, its keys mapped).
    args.ema_decay (optional, > 0): also keep a moving average of the weights (WeightAverage), saved
    beside each checkpoint as model_N_ema (its path in the result's ema_checkpoint).
    Returns dict(global_step, last_loss, losses, best_metric, last_checkpoint[, ema_checkpoint]).
    """
    import paddle
    from paddlenlp.transformers import LinearDecayWithWarmup

    if args.init_from_ckpt and getattr(args, "init_weights", None):
        raise DataError(
            f"--init_from_ckpt {args.init_from_ckpt} resumes a run and --init_weights {args.init_weights} starts a "
            "new one from trained weights: give one of them"
        )
    steps_per_epoch = num_batches(len(dataset), args.batch_size, world_size)
    total_steps = steps_per_epoch * args.epochs
    if getattr(args, "max_steps", 0) and args.max_steps > 0:
        total_steps = min(total_steps, args.max_steps)

    lr_scheduler = LinearDecayWithWarmup(args.learning_rate, total_steps, args.warmup_proportion)
    if getattr(args, "freeze_embeddings", False):
        frozen = freeze_word_embeddings(model)
        if rank == 0:
            print(f"--freeze_embeddings: {frozen:,} word-embedding weights kept as loaded")
    trained = [p for p in model.parameters() if not p.stop_gradient]
    decay_params = [p.name for n, p in model.named_parameters() if not any(nd in n for nd in ("bias", "norm"))]
    optimizer = paddle.optimizer.AdamW(
        learning_rate=lr_scheduler,
        parameters=trained,
        weight_decay=args.weight_decay,
        apply_decay_param_fun=lambda x: x in decay_params,
    )

    kept = save_model if save_model is not None else model
    global_step = 0
    if args.init_from_ckpt:
        loaded = checkpoint.load_params(kept, args.init_from_ckpt)
        state, opt_file = checkpoint.load_state(args.init_from_ckpt)
        if state is not None:
            frozen = bool(getattr(args, "freeze_embeddings", False))
            if "freeze_embeddings" in state and bool(state["freeze_embeddings"]) != frozen:  # older runs: no key
                raise DataError(
                    f"--init_from_ckpt {args.init_from_ckpt}: that run was trained "
                    f"{'with' if not frozen else 'without'} --freeze_embeddings, so its optimizer state fits another "
                    "set of weights; resume with the same flags, or start a new run from its weights (--init_weights)"
                )
            try:
                optimizer.set_state_dict(paddle.load(opt_file))
            except AssertionError as e:  # Paddle asserts when a trained weight has no state in the file
                raise DataError(
                    f"--init_from_ckpt {args.init_from_ckpt}: its optimizer state does not fit this model's trained "
                    f"weights ({e}); resume with the flags of that run, or start anew with --init_weights"
                ) from None
            global_step = int(state["global_step"])
            if rank == 0:
                print(f"resumed from {loaded} at global step {global_step}")
        elif rank == 0:
            print(f"initialised weights from {loaded} (no optimizer state there: starting at step 0)")
    elif getattr(args, "init_weights", None):
        loaded = (load_init_weights or checkpoint.load_params)(kept, args.init_weights)
        if rank == 0:
            print(f"initialised weights from {loaded} (--init_weights: fresh optimizer, step 0)")

    average = None
    if getattr(args, "ema_decay", 0) and rank == 0:  # rank 0 writes the checkpoints
        average = WeightAverage(kept, args.ema_decay)
        ema_file = args.init_from_ckpt and os.path.join(checkpoint.ckpt_dir_of(args.init_from_ckpt), checkpoint.EMA)
        if ema_file and os.path.isfile(ema_file):
            average.load(paddle.load(ema_file))
            print(f"--ema_decay {args.ema_decay}: weight average resumed from {ema_file}")
        else:
            print(f"--ema_decay {args.ema_decay}: weight average starts from the loaded weights")

    scaler = paddle.amp.GradScaler(init_loss_scaling=amp_scale) if amp_scale else None
    net = paddle.DataParallel(model, find_unused_parameters=True) if world_size > 1 else model

    def save(step, epoch, batch, name=None):
        d = os.path.join(args.save_dir, name or f"model_{step}")
        checkpoint.save(
            d,
            kept,
            tokenizer=tokenizer,
            backbone_config=backbone_config,
            optimizer=optimizer,
            state={
                "global_step": step,
                "epoch": epoch,
                "batch": batch,
                "total_steps": total_steps,
                "freeze_embeddings": bool(getattr(args, "freeze_embeddings", False)),
            },
            meta=meta,
            extra=None if average is None else {checkpoint.EMA: average.avg},
        )
        if average is not None:  # the averaged weights as a checkpoint of their own (weights only)
            checkpoint.save(d + "_ema", average, tokenizer=tokenizer, backbone_config=backbone_config, meta=meta)
            result["ema_checkpoint"] = d + "_ema"
        return d

    stop = []

    def on_signal(signum, frame):  # finish the current step, then save and leave
        stop.append(signum)

    curves = Curves(getattr(args, "logdir", None) or os.path.join(args.save_dir, "vdl_log")) if rank == 0 else None
    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    result = {"losses": [], "best_metric": None, "last_checkpoint": None, "last_loss": None}
    best = -float("inf")
    epoch, step_in_epoch = 1 + global_step // steps_per_epoch, global_step % steps_per_epoch
    last_saved = global_step if args.init_from_ckpt else -1
    model.train()
    tic, tic_step = time.time(), global_step
    start_time = time.time()
    try:
        while global_step < total_steps:
            batches = batch_indices(
                len(dataset),
                args.batch_size,
                shuffle=True,
                seed=args.seed,
                epoch=epoch,
                rank=rank,
                world_size=world_size,
            )
            for b in range(step_in_epoch, len(batches)):
                if global_step >= total_steps:
                    break
                tensors = [paddle.to_tensor(a) for a in collate([dataset[i] for i in batches[b]])]
                if scaler is None:
                    loss = loss_fn(net, tensors)
                    loss.backward()
                    optimizer.step()
                else:
                    with paddle.amp.auto_cast():
                        loss = loss_fn(net, tensors)
                    scaled = scaler.scale(loss)
                    scaled.backward()
                    scaler.minimize(optimizer, scaled)
                lr_scheduler.step()
                optimizer.clear_grad()
                global_step += 1
                if average is not None:
                    average.update(global_step)
                loss_value = float(loss)
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        f"loss became {loss_value} at global step {global_step}; "
                        f"lower --learning_rate (last good checkpoint: {result['last_checkpoint']})"
                    )
                if stop:
                    raise _Interrupted()
                result["losses"].append(loss_value)
                if curves is not None:
                    curves.add("train/loss", global_step, loss_value)
                result["last_loss"] = loss_value
                if rank == 0 and (global_step % args.logging_steps == 0 or global_step == total_steps):
                    elapsed = time.time() - tic
                    speed = (global_step - tic_step) / elapsed if elapsed > 0 else float("nan")
                    eta = (total_steps - global_step) / speed if speed > 0 else float("inf")
                    print(
                        "global step %d, epoch: %d, batch: %d, loss: %.5f, lr: %.2e, speed: %.2f step/s, eta: %s"
                        % (global_step, epoch, b + 1, loss_value, lr_scheduler.get_lr(), speed, format_eta(eta)),
                        flush=True,
                    )
                    tic, tic_step = time.time(), global_step
                    curves.add("train/lr", global_step, lr_scheduler.get_lr())
                    curves.add("train/speed_steps_per_s", global_step, speed)
                if rank == 0 and evaluate is not None and args.eval_step > 0 and global_step % args.eval_step == 0:
                    value = evaluate(kept)
                    model.train()
                    print(f"eval_dev {metric_name}:{value:.4f}", flush=True)
                    curves.add(f"eval/{metric_name}", global_step, value)
                    if value > best:
                        best = value
                        result["best_metric"] = value
                        save(global_step, epoch, b + 1, name="model_best")
                if rank == 0 and args.save_step > 0 and global_step % args.save_step == 0:
                    result["last_checkpoint"] = save(global_step, epoch, b + 1)
                    last_saved = global_step
            else:
                epoch += 1
                step_in_epoch = 0
                continue
            break
        if rank == 0 and last_saved != global_step:
            result["last_checkpoint"] = save(global_step, epoch, step_in_epoch)
    except _Interrupted:
        if rank == 0:
            d = save(global_step, epoch, 0)
            print(f"interrupted: saved {d}; resume with --init_from_ckpt {d}", flush=True)
        raise SystemExit(130) from None
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if curves is not None:
            curves.close()
    result["global_step"] = global_step
    result["train_examples"] = len(dataset)
    if world_size > 1:  # every rank reports, so a divergence between replicas is visible
        print(f"rank {rank} weights digest: {weights_digest(model)}", flush=True)
        finish_parallel()
    if rank == 0:
        print(
            f"training done: {global_step} steps in {time.time() - start_time:.1f}s; "
            f"checkpoint {result['last_checkpoint']}",
            flush=True,
        )
    return result
