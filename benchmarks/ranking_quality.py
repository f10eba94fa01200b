"""Ranking quality on KUAKE-QTR dev and on unseen queries: fine-tuned pairwise model and cross-encoder vs baselines.

    python benchmarks/ranking_quality.py --data_dir data --ce_steps 300 --pairwise_steps 200

Every system scores the same pairs of two sets: dev (data/sort/dev_graded.csv; most of its queries
also occur in train) and the query-disjoint holdout (data/sort/holdout_graded.csv: train queries held
out of every training file, none in dev). AUC uses the binary label (KUAKE label >= 2); NDCG@3 and
NDCG@10 the graded labels 0..3 per query (queries with 2+ titles); MRR: the first relevant title.
Baselines: character-set
Jaccard, BM25 over jieba words (statistics from recall/corpus.csv), zero-shot e5 cosine.
Writes benchmarks/results/ranking_quality.{md,json} and ranking_quality_roc.png.
"""

import argparse
import json
import os
import time

import report
from baselines import BM25, e5_cosine_scores, jaccard_scores

from core.data import read_labeled_pairs, read_tsv
from core.metrics import auc, mrr, ndcg_at_k, query_bootstrap_auc_ci, roc_curve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_set(data_dir, name):
    rows = read_labeled_pairs(os.path.join(data_dir, f"sort/{name}_graded.csv"), label_values=(0, 1, 2, 3))
    pairs = [(r["query"], r["title"]) for r in rows]
    graded = [r["label"] for r in rows]
    return {"pairs": pairs, "graded": graded, "labels": [int(g >= 2) for g in graded]}


def set_metrics(ev, scores):
    """AUC, NDCG@3/@10 (queries with 2+ titles), MRR of one system on one evaluation set."""
    from collections import Counter

    queries = [q for q, _ in ev["pairs"]]
    n_titles = Counter(queries)
    multi = [i for i, q in enumerate(queries) if n_titles[q] >= 2]

    def sub(xs):
        return [xs[i] for i in multi]

    return {
        "auc": round(auc(ev["labels"], scores), 4),
        "auc_ci95": [round(x, 4) for x in query_bootstrap_auc_ci(queries, ev["labels"], scores)],
        "ndcg3": round(ndcg_at_k(sub(queries), sub(ev["graded"]), sub(list(scores)), 3), 4),
        "ndcg10": round(ndcg_at_k(sub(queries), sub(ev["graded"]), sub(list(scores)), 10), 4),
        "mrr": round(mrr(queries, ev["labels"], list(scores)), 4),
    }


CE_OBJECTIVES = {
    "cross_encoder": "cross-entropy on 0/1 labels (rank/train.csv)",
    "cross_encoder_graded": "soft-label cross-entropy on the grades 0..3 (rank/train_graded.csv, --max_grade 3)",
    "cross_encoder_graded_mined": "graded, plus mined hard negatives as grade 0 (--hard_negatives_file)",
    "cross_encoder_listwise": "graded + mined, plus a softmax loss over groups of one query's titles, the "
    "best first (--listwise)",
}
PAIRWISE_OBJECTIVES = {
    "pairwise": "pairwise margin ranking (sort/train_pairwise.csv)",
    "pairwise_mined": "pairwise margin ranking, plus mined hard negatives as extra triples (--hard_negatives_file)",
}
TRAINED = (*PAIRWISE_OBJECTIVES, *CE_OBJECTIVES)


def train_and_score(kind, args, sets):
    save = os.path.join(args.work_dir, kind)
    pairwise = kind in PAIRWISE_OBJECTIVES
    lr = args.pairwise_learning_rate if pairwise and args.pairwise_learning_rate else args.learning_rate
    batch = args.batch_size  # examples a step: pairs, or with cross_encoder_listwise groups of pairs
    if kind == "cross_encoder_listwise":  # as many pairs per step as the pointwise runs
        batch = max(1, args.batch_size // args.ce_listwise)
    common = [
        "--model_name_or_path",
        args.model_name_or_path,
        "--save_dir",
        save,
        "--batch_size",
        str(batch),
        "--learning_rate",
        str(lr),
        "--warmup_proportion",
        "0.1",
        "--max_seq_length",
        str(args.max_seq_length),
        "--eval_step",
        "0",
        "--save_step",
        "100",
        "--logging_steps",
        "10",
        "--epochs",
        "1",
        "--weight_decay",
        "0.01",
    ]
    t0 = time.time()
    if pairwise:
        from ernie_matching.common import build
        from ernie_matching.train_pairwise import main

        extra = []
        if kind == "pairwise_mined":
            if not args.hard_negatives_file:
                raise SystemExit(f"{kind} needs --hard_negatives_file (recall/mine_negatives.py)")
            extra = ["--hard_negatives_file", args.hard_negatives_file]

        result = main(
            common
            + [
                "--train_file",
                os.path.join(args.data_dir, "sort/train_pairwise.csv"),
                "--test_file",
                os.path.join(args.data_dir, "sort/dev_pairwise.csv"),
                "--max_steps",
                str(args.pairwise_steps),
                "--margin",
                "0.1",
                "--pooling",
                args.pairwise_pooling,
                "--in_batch_pairs",
                args.pairwise_in_batch,
            ]
            + (["--init_weights", args.pairwise_init_weights] if args.pairwise_init_weights else [])
            + extra
        )
        pairs_per_step = 2 * args.batch_size
    else:
        from cross_encoder.common import build
        from cross_encoder.train_ce import main

        graded = kind in ("cross_encoder_graded", "cross_encoder_graded_mined", "cross_encoder_listwise")
        extra = ["--max_grade", "3"] if graded else []
        pairs_per_step = batch
        if kind == "cross_encoder_listwise":
            extra += ["--listwise", str(args.ce_listwise)]
            pairs_per_step = batch * args.ce_listwise
        if kind in ("cross_encoder_graded_mined", "cross_encoder_listwise"):
            if not args.hard_negatives_file:
                raise SystemExit(f"{kind} needs --hard_negatives_file (recall/mine_negatives.py)")
            extra += ["--hard_negatives_file", args.hard_negatives_file]
        result = main(
            common
            + [
                "--train_set",
                os.path.join(args.data_dir, "rank/train_graded.csv" if graded else "rank/train.csv"),
                "--test_file",
                os.path.join(args.data_dir, "rank/dev_pairwise.csv"),
                "--max_steps",
                str(args.ce_steps),
                "--seed",
                str(args.seed),
            ]
            + (["--pooling", args.ce_pooling] if args.ce_pooling != "auto" else [])
            + (["--init_weights", args.ce_init_weights] if args.ce_init_weights else [])
            + extra
        )
    train_time = time.time() - t0
    from core.engine import RankerEngine
    from core.exporting import export_main

    export_dir = os.path.join(args.work_dir, kind + "_export")
    export_main(build, "", ["--params_path", result["last_checkpoint"], "--output_path", export_dir])
    t1 = time.time()
    engine = RankerEngine(export_dir, max_seq_length=args.max_seq_length, cpu_threads=2)
    scores = {name: engine.score(ev["pairs"]) for name, ev in sets.items()}
    info = {
        "pooling": args.pairwise_pooling if pairwise else args.ce_pooling,
        "objective": {**PAIRWISE_OBJECTIVES, **CE_OBJECTIVES}[kind]
        + (
            f"; started from the weights of {start}"
            if (start := args.pairwise_init_weights if pairwise else args.ce_init_weights)
            else ""
        ),
        "steps": result["global_step"],
        "batch_size": batch,
        "pairs_per_step": pairs_per_step,
        "max_seq_length": args.max_seq_length,
        "learning_rate": lr,
        "train_seconds": round(train_time, 1),
        "score_seconds": round(time.time() - t1, 1),
        "final_loss": result["last_loss"],
        "train_examples": result["train_examples"],
    }
    if kind == "cross_encoder_listwise":
        info["listwise"] = args.ce_listwise
    if pairwise:
        info["in_batch_pairs"] = "on" if result["in_batch_pairs"] else "off"
    return scores, info


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=os.path.join(ROOT, "data"))
    p.add_argument("--kuake_dir", default=os.path.join(ROOT, "..", "shared", "datasets", "kuake_qtr"))
    p.add_argument("--model_name_or_path", default="multilingual-e5-small")
    p.add_argument("--pairwise_steps", type=int, default=200)
    p.add_argument("--ce_steps", type=int, default=300)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--learning_rate", type=float, default=5e-5)
    p.add_argument("--pairwise_learning_rate", type=float, default=None, help="default: --learning_rate")
    p.add_argument(
        "--pairwise_pooling",
        default="auto",
        choices=["auto", "cls", "mean"],
        help="pooled vector of the pairwise model (auto: e5's mean pooling)",
    )
    p.add_argument(
        "--pairwise_in_batch",
        default="auto",
        choices=["auto", "on", "off"],
        help="train_pairwise.py --in_batch_pairs: also rank rows of different queries by graded label",
    )
    p.add_argument("--ce_pooling", default="auto", choices=["auto", "cls", "mean"], help="cross-encoder pooling")
    p.add_argument(
        "--hard_negatives_file",
        default=None,
        help="mined negatives for cross_encoder_graded_mined / _listwise (recall/mine_negatives.py output)",
    )
    p.add_argument(
        "--ce_init_weights",
        default=None,
        help="cross-encoder systems start from this trained checkpoint (train_ce.py --init_weights), e.g. "
        "fine-tune the binary cross-encoder on graded labels and mined negatives",
    )
    p.add_argument(
        "--pairwise_init_weights",
        default=None,
        help="pairwise systems start from this checkpoint (train_pairwise.py --init_weights): a pairwise one, or a "
        "cross-encoder's, whose 2-class head becomes the one logit (the run starts from its scores)",
    )
    p.add_argument(
        "--ce_listwise",
        type=int,
        default=4,
        help="cross_encoder_listwise: titles per group (train_ce.py --listwise); --batch_size / N groups a step",
    )
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument(
        "--external",
        nargs="*",
        default=[],
        help="NAME=EXPORT_DIR: also score rankers trained and exported elsewhere (e.g. by bench_serving.sh)",
    )
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument(
        "--systems",
        default="char_jaccard,bm25,zero_shot_e5,cross_encoder,pairwise",
        help="also cross_encoder_graded, cross_encoder_graded_mined, cross_encoder_listwise "
        "(the last two with --hard_negatives_file)",
    )
    p.add_argument("--work_dir", default=os.path.join(ROOT, "work_dirs", "ranking_quality"))
    p.add_argument(
        "--threads", type=int, default=2, help="CPU threads for training (Paddle sets 1 when OMP_NUM_THREADS is unset)"
    )
    p.add_argument(
        "--reuse",
        default="",
        help="comma-separated trained systems to score from the exports of a "
        "previous run in --work_dir instead of training them again (e.g. cross_encoder)",
    )
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--name", default="ranking_quality", help="results file name (benchmarks/results/NAME.md ...)")
    args = p.parse_args()
    from core.inference import set_threads

    set_threads(args.threads)
    systems = args.systems.split(",")

    sets = {name: load_set(args.data_dir, name) for name in ("dev", "holdout")}
    ev_dev = sets["dev"]
    labels = ev_dev["labels"]
    scores, trained = {}, {}  # scores[system][set] = scores of that set's pairs
    if "char_jaccard" in systems:
        scores["char_jaccard"] = {n: jaccard_scores(ev["pairs"]) for n, ev in sets.items()}
    if "bm25" in systems:
        corpus = [r["title"] for r in read_tsv(os.path.join(args.data_dir, "recall/corpus.csv"), ("title",))]
        bm25 = BM25(corpus)
        scores["bm25"] = {n: bm25.score_pairs(ev["pairs"]) for n, ev in sets.items()}
    if "zero_shot_e5" in systems:
        from core.backbone import load_backbone, load_tokenizer

        e5, e5_tok = load_backbone("multilingual-e5-small"), load_tokenizer("multilingual-e5-small")
        scores["zero_shot_e5"] = {n: e5_cosine_scores(ev["pairs"], e5, e5_tok) for n, ev in sets.items()}
    previous, runs_tried = {}, []
    prev_file = os.path.join(args.out, args.name + ".json")
    if os.path.isfile(prev_file):
        prev = json.load(open(prev_file))
        previous = prev.get("trained", {}) if args.reuse else {}
        runs_tried = prev.get("pairwise_runs", [])
    for spec in args.external:  # NAME=EXPORT_DIR: a ranker trained elsewhere, scored on the same sets
        name, _, export_dir = spec.partition("=")
        from core.engine import RankerEngine

        engine = RankerEngine(export_dir, max_seq_length=args.max_seq_length)
        scores[name] = {n: engine.score(ev["pairs"]) for n, ev in sets.items()}
        print(f"{name}: dev auc {auc(labels, scores[name]['dev']):.4f} ({export_dir}, trained elsewhere)", flush=True)
    for kind in TRAINED:
        if kind in systems and kind in args.reuse.split(",") and kind in previous:
            from core.engine import RankerEngine

            engine = RankerEngine(os.path.join(args.work_dir, kind + "_export"), max_seq_length=args.max_seq_length)
            scores[kind] = {n: engine.score(ev["pairs"]) for n, ev in sets.items()}
            trained[kind] = dict(previous[kind], reused_from_previous_run=True)
            print(f"{kind}: dev auc {auc(labels, scores[kind]['dev']):.4f} (exported model of the previous run)")
        elif kind in systems:
            scores[kind], trained[kind] = train_and_score(kind, args, sets)
            print(f"{kind}: dev auc {auc(labels, scores[kind]['dev']):.4f}", flush=True)

    metrics = {k: {n: set_metrics(sets[n], v[n]) for n in sets} for k, v in scores.items()}
    dev_auc = {k: m["dev"]["auc"] for k, m in metrics.items()}
    if "pairwise" in trained and not trained["pairwise"].get("reused_from_previous_run"):
        for r in runs_tried:
            if r.get("note") == "the run in the table above":
                r["note"] = "earlier run of this script"
            if "data" not in r:  # runs from before the query-disjoint holdout existed
                r["data"] = "all train queries"
                r["note"] = r.get("note", "") + " (trained on all train queries, before the holdout split)"
        t = trained["pairwise"]
        runs_tried.append(
            {
                "pooling": t["pooling"],
                "learning_rate": t["learning_rate"],
                "steps": t["steps"],
                "batch_size": t["batch_size"],
                "warmup": 0.1,
                "in_batch_pairs": t["in_batch_pairs"],
                "dev_auc": dev_auc["pairwise"],
                "train_seconds": t["train_seconds"],
                "final_loss": t["final_loss"],
                "note": "the run in the table above",
                "data": "train without the holdout queries",
            }
        )
    data = {
        "metrics": metrics,
        "dev_auc": dev_auc,
        "sets": {n: {"pairs": len(ev["pairs"]), "queries": len({q for q, _ in ev["pairs"]})} for n, ev in sets.items()},
        "trained": trained,
        "external": {n: report._portable(d) for n, _, d in (e.partition("=") for e in args.external)},
        "backbone": args.model_name_or_path,
        "targets": {
            "cross_encoder_auc": 0.85,
            "pairwise_auc": 0.83,
            "cross_encoder_holdout_auc": 0.87,
            "pairwise_holdout_auc": 0.85,
        },
        "pairwise_runs": runs_tried,
    }
    cols = ["AUC", "NDCG@3", "NDCG@10", "MRR"]
    body = report.table(
        ["system"] + [f"dev {c}" for c in cols] + [f"unseen {c}" for c in cols],
        [
            (k, *(m[n][key] for n in ("dev", "holdout") for key in ("auc", "ndcg3", "ndcg10", "mrr")))
            for k, m in metrics.items()
        ],
    )
    body += "\n\nAUC with its 95 % interval (1,000 bootstrap resamples of whole queries):\n\n" + report.table(
        ["system", "dev AUC", "dev 95 % interval", "unseen AUC", "unseen 95 % interval"],
        [
            (k, *(x for n in ("dev", "holdout") for x in (m[n]["auc"], "[{}, {}]".format(*m[n]["auc_ci95"]))))
            for k, m in metrics.items()
        ],
    )
    d, h = data["sets"]["dev"], data["sets"]["holdout"]
    body += (
        f"\n\ndev: {d['pairs']} pairs, {d['queries']} queries, most of which also occur in train. unseen: the "
        f"query-disjoint holdout, {h['pairs']} pairs of {h['queries']} train queries held out of every training "
        "file (datasets/prepare_kuake_qtr.py --holdout_fraction 0.15), none of them in dev. AUC over all pairs "
        "(relevant = label >= 2); NDCG@k with the graded labels 0..3 over the queries with 2 or more titles; MRR "
        "of the first relevant title over every query."
    )
    if trained:
        body += "\n\nWhat was trained (backbone %s, 12 layers, hidden 384):\n\n" % args.model_name_or_path
        body += report.table(
            ["model", "steps", "batch", "pairs/step", "seq len", "lr", "train time (s)", "pairs seen", "objective"],
            [
                (
                    k,
                    v["steps"],
                    v["batch_size"],
                    v["pairs_per_step"],
                    v["max_seq_length"],
                    v["learning_rate"],
                    v["train_seconds"],
                    v["steps"] * v["pairs_per_step"],
                    v.get("objective", ""),
                )
                for k, v in trained.items()
            ],
        )
        body += (
            "\n\nReduced run: a full fine-tune (PaddleNLP's 3 epochs) of this 12-layer model takes hours on 2 "
            "CPU cores, so each model saw about one epoch or less: "
            + ", ".join(
                f"{k} {v['steps'] * v['batch_size'] / v['train_examples']:.0%} of its {v['train_examples']:,} "
                + (f"training groups of {v['listwise']} titles" if v.get("listwise") else "training rows")
                if v.get("train_examples")
                else f"{k} {v['steps'] * v['batch_size']:,} rows"
                for k, v in trained.items()
            )
            + ". Targets: cross-encoder AUC >= 0.85 on dev and >= 0.87 on unseen queries, pairwise >= 0.83 / >= 0.85. "
            "Longer runs (more --ce_steps / --pairwise_steps) trade CPU hours for quality."
        )
    if data["external"]:
        body += "\n\nScored, trained elsewhere: " + ", ".join(f"{n} = `{d}`" for n, d in data["external"].items())
    if runs_tried:
        body += (
            "\n\n## Pairwise runs tried (batch 16, seq len 64, 10% warm-up, margin 0.1)\n\nin-batch pairs: off = "
            "PaddleNLP's loss, one pair per (query, title, neg_title) row; on = every two rows of the batch "
            "whose graded labels differ, across queries too (train_pairwise.py --in_batch_pairs).\n\n"
        )
        body += report.table(
            ["pooling", "lr", "steps", "in-batch pairs", "dev AUC", "note"],
            [
                (
                    r["pooling"],
                    r["learning_rate"],
                    r["steps"],
                    r.get("in_batch_pairs", "off"),
                    "-" if r["dev_auc"] is None else r["dev_auc"],
                    r.get("note", ""),
                )
                for r in runs_tried
            ],
        )
    body += f"\n\n![ROC curves]({args.name}_roc.png)\n"
    report.write(args.out, args.name, data, body)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.figure(figsize=(5.5, 5))
    for k, v in scores.items():
        fpr, tpr = roc_curve(labels, v["dev"])
        plt.plot(fpr, tpr, label=f"{k} (AUC {dev_auc[k]:.3f})")
    plt.plot([0, 1], [0, 1], "k:", lw=0.8)
    plt.xlabel("false positive rate")
    plt.ylabel("true positive rate")
    plt.title("KUAKE-QTR dev, relevant = label >= 2")
    plt.legend(loc="lower right", fontsize=8)
    plt.tight_layout()
    plt.savefig(os.path.join(args.out, args.name + "_roc.png"), dpi=120)


if __name__ == "__main__":
    main()
