"""Recall quality and speed: BM25, zero-shot e5, in-batch-negative fine-tuned e5, SimCSE e5, and the
RocketQA ablations: in-batch + mined hard negatives (raw), + denoising by the cross-encoder, + distillation.

    python benchmarks/recall_quality.py --batch_neg_steps 150 --simcse_steps 100

Hard negatives (systems hard_neg_raw_e5, hard_neg_e5, distilled_e5): recall/mine_negatives.py over the
zero-shot e5 index (top --mine_recall_num, known positives dropped) for every training query; raw keeps
the best-retrieved rest, denoised drops what the cross-encoder (--reranker_dir) scores >= --denoise_threshold,
distilled adds margin-MSE towards the cross-encoder's scores (train_batch_neg.py --teacher_scores_file);
distilled_graded_e5 (not in the default --systems) distils instead from another ranker's scores of the same
mined pairs (--teacher_dir, e.g. the graded + mined cross-encoder, which orders recalled titles better).
hybrid_e5 (not in the default --systems; needs zero_shot_e5 and --tune_queries): the zero-shot encoder
with Milvus BM25 beside it (an index built with lexical=True, core.search.hybrid), its lexical weight the
best of --lexical_weights by MRR@10 on the --tune_queries training queries.
KUAKE-QTR is reported on dev queries and on the query-disjoint holdout (kuake_qtr_unseen: train queries
held out of every training file, none in dev), both against the same corpus and index.

Datasets (every query counts; several relevant documents per query allowed):
- KUAKE-QTR: corpus = every unique title of train, dev and test_unlabeled (data/recall/corpus.csv);
  queries = dev queries with a title of label >= 2, those titles relevant (data/recall/dev.csv);
  kuake_qtr_dev_all_judged: the same queries, relevant = every title judged >= 2 for them in train
  or dev (most dev queries have more relevant titles in train than in dev; dev.csv counts those as
  misses). The fine-tuned encoders trained on those train pairs, so that set is soft as dev is.
- CSL: corpus = the abstracts of kg_dev + kg_test; query = a paper's keywords; relevant = its abstract.
The e5 systems run as exported static graphs on ONNX Runtime and search a Milvus Lite index (HNSW);
BM25 (rank_bm25 over jieba words) scores the whole corpus. The fine-tuned systems train on
KUAKE-QTR only; on CSL they show transfer. End to end: NDCG@10 (graded KUAKE labels) of the recall
order vs after re-ranking the top --rerank_depth with the cross-encoder of benchmarks/ranking_quality.py.
Fusion weight (--recall_weights 1,0.75,0.5,0.25,0 --tune_queries 600): the fused order at each weight
of the recall order (search.recall_weight), and the weight each ranker gets from --tune_queries training
queries (kuake_qtr_train_tune, end to end only; the rankers trained on those queries' pairs), applied
unchanged to dev and to the unseen queries. --rrf_ks 2,5,10,30 scores each k of the fusion
(search.rrf_k) at each of those weights too, and reports the (k, weight) pair chosen on the same queries.
--more_rerankers NAME=DIR puts more rankers side by side; NAME=DIR_A+DIR_B is an ensemble of two, which
re-ranks by the mean of their scores, each min-max scaled over the recalled list.
Writes benchmarks/results/NAME.{md,json} and NAME_recall_at_k.png (--name, default recall_quality).
"""

import argparse
import json
import os
import time

import numpy as np
import report

from core.data import read_corpus
from core.errors import DataError
from core.metrics import dcg, mrr_at_k, paired_bootstrap_ci, reciprocal_ranks
from core.search import DEFAULT_RERANK, check_lexical_weight, check_recall_weight
from core.text import clean_field
from recall.training import RECALL_KS, read_relevant, recall_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MINED_SYSTEMS = ("hard_neg_raw_e5", "hard_neg_e5", "distilled_e5", "distilled_graded_e5")
DISTILLED = ("distilled_e5", "distilled_graded_e5")
HYBRID = "hybrid_e5"  # the zero-shot encoder + Milvus BM25 (core.search.hybrid), weight chosen on TUNE_SET
E5_SYSTEMS = ("zero_shot_e5", "in_batch_e5", "simcse_e5") + MINED_SYSTEMS + (HYBRID,)
TUNE_SET = "kuake_qtr_train_tune"  # training queries that choose the fusion weight; no recall figures
DEFAULT_RERANKER_DIR = os.path.join(ROOT, "work_dirs", "ranking_quality", "cross_encoder_export")


def kuake_set(args):
    queries, relevant = read_relevant(os.path.join(args.data_dir, "recall/dev.csv"))
    corpus = read_corpus(os.path.join(args.data_dir, "recall/corpus.csv"))
    sets = {}
    holdout = os.path.join(args.data_dir, "recall/holdout.csv")
    if os.path.isfile(holdout):  # the same corpus and index, queries that occur in no training file
        sets["kuake_qtr_unseen"] = read_relevant(holdout)
    # 1,328 of the 1,473 dev queries also have titles judged relevant (label >= 2) in train, 3.5 on
    # average, against 1.2 in dev; data/recall/dev.csv counts those as misses, so its MRR@10 mostly
    # measures which of several relevant titles comes first. The same queries against every title
    # judged relevant for them (train or dev) give the recall a judged set to find.
    train_q, train_rel = read_relevant(os.path.join(args.data_dir, "recall/train.csv"))
    in_train = dict(zip(train_q, train_rel))
    sets["kuake_qtr_dev_all_judged"] = (queries, [rel | in_train.get(q, set()) for q, rel in zip(queries, relevant)])
    if getattr(args, "tune_queries", 0):  # training queries for choosing the fusion weight (end to end only)
        pick = sorted(np.random.RandomState(1).permutation(len(train_q))[: args.tune_queries].tolist())
        sets[TUNE_SET] = ([train_q[i] for i in pick], [train_rel[i] for i in pick])
    return {
        "name": "kuake_qtr",
        "queries": queries,
        "relevant": relevant,
        "corpus": list(dict.fromkeys(corpus)),
        "max_seq_length": 64,
        "more_query_sets": sets,
    }


def csl_set(args):
    queries, relevant, corpus = [], [], {}
    for name in ("kg_dev.tsv", "kg_test.tsv"):
        with open(os.path.join(args.csl_dir, name), encoding="utf-8") as f:
            for line in f:
                cells = line.rstrip("\n").split("\t")
                if len(cells) != 3:
                    continue
                abstract, kws = clean_field(cells[1]), clean_field(cells[2].replace("_", " "))
                if not abstract or not kws:
                    continue
                corpus.setdefault(abstract, None)
                queries.append(kws)
                relevant.append({abstract})
    return {"name": "csl", "queries": queries, "relevant": relevant, "corpus": list(corpus), "max_seq_length": 256}


def graded_kuake(args):
    """Graded labels 0..3 of every judged (query, title) of train and dev: a dev query's recalled
    titles include titles judged for the same query in train, which count with their label."""
    label = {}
    for name in ("train.json", "dev.json"):
        for r in json.load(open(os.path.join(args.kuake_dir, name), encoding="utf-8")):
            q, t = clean_field(r["query"]), clean_field(r["title"])
            if q and t:
                label[(q, t)] = max(label.get((q, t), 0), int(r["label"]))
    return label


def ideal_dcg10(query, label):
    """DCG@10 of every title judged for `query`, best first (titles recalled or not)."""
    return dcg(sorted((v for (q, _), v in label.items() if q == query), reverse=True)[:10])


def ndcg10(ranked, query, label, ideal=None):
    """NDCG@10 of `ranked` by the graded `label` (unjudged titles 0); `ideal`: ideal_dcg10 when known."""
    ideal = ideal_dcg10(query, label) if ideal is None else ideal
    return dcg([label.get((query, t), 0) for t in ranked[:10]]) / ideal if ideal > 0 else 0.0


def train_encoders(args, systems):
    """Train (or reuse) the fine-tuned encoders; export the e5 systems asked for. -> {system: (export_dir, info)}."""
    from recall.export_model import main as export

    out = {}
    w = args.work_dir
    common = common_args(args)
    for system in [s for s in E5_SYSTEMS if s in systems and s not in MINED_SYSTEMS and s != HYBRID]:
        export_dir = os.path.join(w, system + "_export")
        info_file = os.path.join(w, system + "_train.json")
        if system in args.reuse.split(",") and os.path.isdir(export_dir):
            info = json.load(open(info_file)) if os.path.isfile(info_file) else {}
            out[system] = (export_dir, dict(info, reused_from_previous_run=True))
            continue
        info, params = {}, None
        t0 = time.time()
        if system == "in_batch_e5":
            from recall.train_batch_neg import main as train

            res = train(batch_neg_args(args) + ["--save_dir", os.path.join(w, system)])
            params = res["last_checkpoint"]
            info = {
                "objective": "in-batch negatives",
                "train_file": "recall/train.csv (KUAKE train without the holdout, label >= 2)",
                "steps": res["global_step"],
                "margin": 0.2,
                "scale": 30,
            }
        elif system == "simcse_e5":
            from recall.train_simcse import main as train

            texts = read_corpus(os.path.join(args.data_dir, "recall/corpus.csv"))
            rng = np.random.RandomState(0)
            pick = rng.permutation(len(texts))[: args.simcse_steps * args.batch_size]
            train_file = os.path.join(w, "simcse_train.csv")
            with open(train_file, "w", encoding="utf-8") as f:
                f.writelines(texts[i] + "\n" for i in pick)
            res = train(
                common
                + [
                    "--train_set_file",
                    train_file,
                    "--save_dir",
                    os.path.join(w, system),
                    "--max_steps",
                    str(args.simcse_steps),
                    "--dropout",
                    "0.1",
                    "--scale",
                    "20",
                    "--margin",
                    "0",
                ]
            )
            params = res["last_checkpoint"]
            info = {
                "objective": "unsupervised SimCSE (dropout 0.1)",
                "train_file": "KUAKE corpus titles (sample)",
                "steps": res["global_step"],
                "scale": 20,
                "margin": 0,
            }
        if params:
            info.update(
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                max_seq_length=64,
                train_seconds=round(time.time() - t0, 1),
                final_loss=res["last_loss"],
            )
        argv = ["--output_path", export_dir, "--model_name_or_path", args.model_name_or_path, "--onnx"]
        export(argv + (["--params_path", params] if params else []))
        with open(info_file, "w") as f:
            json.dump(info, f)
        out[system] = (export_dir, info)
    if HYBRID in systems:  # the zero-shot encoder's own export, searched with BM25 beside it
        out[HYBRID] = (out["zero_shot_e5"][0], {"encoder": "zero_shot_e5", "lexical": "Milvus BM25, jieba"})
    return out


def common_args(args):
    """Flags every recall training run of this benchmark shares."""
    return [
        "--model_name_or_path",
        args.model_name_or_path,
        "--batch_size",
        str(args.batch_size),
        "--max_seq_length",
        "64",
        "--warmup_proportion",
        "0.1",
        "--epochs",
        "1",
        "--logging_steps",
        "10",
        "--eval_step",
        "0",
        "--save_step",
        "50",
        "--learning_rate",
        str(args.learning_rate),
    ]


def batch_neg_args(args):
    """train_batch_neg.py on recall/train.csv: in_batch_e5 and the systems with mined negatives."""
    return common_args(args) + [
        "--train_set_file",
        os.path.join(args.data_dir, "recall/train.csv"),
        "--max_steps",
        str(args.batch_neg_steps),
        "--margin",
        "0.2",
        "--scale",
        "30",
    ]


def mined(args, zero_shot_export, index_uri, denoise):
    """Hard negatives of every training query from the zero-shot e5 index (resumable, cached in work_dir)."""
    from recall.mine_negatives import main as mine

    threshold = args.denoise_threshold if denoise else 1.0
    out = os.path.join(args.work_dir, f"mined_{'denoised' if denoise else 'raw'}.tsv")
    t0 = time.time()
    res = mine(
        [
            "--model_dir",
            zero_shot_export,
            "--ranker_dir",
            args.denoiser_dir or args.reranker_dir,
            "--train_file",
            os.path.join(args.data_dir, "recall/train.csv"),
            "--output",
            out,
            "--milvus_uri",
            index_uri,
            "--collection",
            "kuake_qtr_zero_shot_e5",
            "--recall_num",
            str(args.mine_recall_num),
            "--negatives_per_query",
            str(args.negatives_per_query),
            "--denoise_threshold",
            str(threshold),
            "--backend",
            "onnxruntime",
            "--replicas",
            "2",
            "--cpu_threads",
            "2",
        ]
    )
    info = {
        "file": os.path.relpath(out, ROOT),
        "recall_num": args.mine_recall_num,
        "negatives_per_query": args.negatives_per_query,
        "denoise_threshold": threshold if denoise else None,
        "denoiser": os.path.relpath(args.denoiser_dir or args.reranker_dir, ROOT),
        "mining_seconds_this_run": round(time.time() - t0, 1),
        **res,
    }
    return out, info


def ranker_engine(ranker_dir):
    """An exported ranker on 2 threads: ONNX Runtime fp32 in 2 sessions when the export has an ONNX file
    (Paddle's scores within 2e-6), else Paddle Inference."""
    from core.engine import RankerEngine

    onnx = os.path.isfile(os.path.join(ranker_dir, "inference.onnx"))
    return RankerEngine(
        ranker_dir,
        backend="onnxruntime" if onnx else "paddle",
        max_seq_length=64,
        cpu_threads=2,
        batch_size=32,
        replicas=2 if onnx else 1,
    )


_MEMBERS = {}  # export dir -> (engine, {(query, title): score}): an ensemble reuses its members' scores


def scoring_member(ranker_dir):
    """The engine of an exported ranker and its score cache, shared by every end-to-end run of this process."""
    key = os.path.realpath(ranker_dir)
    if key not in _MEMBERS:
        _MEMBERS[key] = (ranker_engine(ranker_dir), {})
    return _MEMBERS[key]


def rescored(scores_file, ranker_dir):
    """The (query, title) pairs of a mining scores file scored by another exported ranker, in the same
    query\ttitle\tscore format (cached beside it)."""
    from core.data import read_tsv

    out = f"{scores_file[: -len('.tsv')]}.{os.path.basename(os.path.normpath(ranker_dir))}.tsv"
    if os.path.isfile(out):
        return out
    pairs = [(r["query"], r["title"]) for r in read_tsv(scores_file, ("query", "title", "score"))]
    t0 = time.time()
    ranker_engine(ranker_dir).score_to_file(pairs, out)
    print(f"re-scored {len(pairs)} mined pairs with {ranker_dir} in {time.time() - t0:.0f}s -> {out}", flush=True)
    return out


def train_mined(system, args, zero_shot_export, index_uri):
    """hard_neg_raw_e5 / hard_neg_e5 / distilled_e5 / distilled_graded_e5: in-batch negatives plus one
    mined negative per row."""
    from recall.export_model import main as export
    from recall.train_batch_neg import main as train

    w = args.work_dir
    export_dir, info_file = os.path.join(w, system + "_export"), os.path.join(w, system + "_train.json")
    if system in args.reuse.split(",") and os.path.isdir(export_dir) and os.path.isfile(info_file):
        return export_dir, dict(json.load(open(info_file)), reused_from_previous_run=True)
    hard, mining = mined(args, zero_shot_export, index_uri, denoise=system != "hard_neg_raw_e5")
    extra = ["--hard_negatives_file", hard, "--save_dir", os.path.join(w, system)]
    objective = "in-batch + mined hard negatives" + (" (raw)" if system == "hard_neg_raw_e5" else " (denoised)")
    if system in DISTILLED:
        teacher, teacher_name = hard + ".scores.tsv", "the cross-encoder"  # the denoiser's scores
        if system == "distilled_graded_e5":
            if not args.teacher_dir:
                raise SystemExit("distilled_graded_e5 needs --teacher_dir (an exported ranker to distil from)")
            teacher, teacher_name = rescored(teacher, args.teacher_dir), os.path.relpath(args.teacher_dir, ROOT)
        extra += ["--teacher_scores_file", teacher, "--distill_weight", str(args.distill_weight)]
        objective += f" + margin-MSE distillation from {teacher_name}"
    t0 = time.time()
    res = train(batch_neg_args(args) + extra)
    info = {
        "objective": objective,
        "train_file": "recall/train.csv (KUAKE train without the holdout, label >= 2)",
        "steps": res["global_step"],
        "margin": 0.2,
        "scale": 30,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "max_seq_length": 64,
        "train_seconds": round(time.time() - t0, 1),
        "final_loss": res["last_loss"],
        "mining": mining,
    }
    if system in DISTILLED:
        info["distill_weight"] = args.distill_weight
    export(
        [
            "--output_path",
            export_dir,
            "--model_name_or_path",
            args.model_name_or_path,
            "--onnx",
            "--params_path",
            res["last_checkpoint"],
        ]
    )
    with open(info_file, "w") as f:
        json.dump(info, f)
    return export_dir, info


def eval_e5(system, export_dir, ds, args, index_uri):
    from core.engine import EncoderEngine
    from core.index import MilvusIndex
    from core.search import HYBRID_DEPTH, hybrid
    from recall.build_index import build

    lexical = system == HYBRID
    engine = EncoderEngine(
        export_dir, backend="onnxruntime", max_seq_length=ds["max_seq_length"], cpu_threads=2, batch_size=32, replicas=2
    )
    index = MilvusIndex(index_uri, f"{ds['name']}_{system}")
    previous = args.previous_speed.get(ds["name"], {}).get(system)
    reusable = args.reuse_index and system in args.reuse.split(",")  # a retrained model needs its own index
    if reusable and previous and index.exists() and index.info()["rows"] == len(ds["corpus"]):
        stats = {k: previous[k] for k in ("docs", "seconds", "embed_seconds", "docs_per_s", "index_seconds")}
        stats["index_reused_from_previous_run"] = True
    else:
        info, stats = build(engine, ds["corpus"], index, desc=f"{ds['name']}/{system}", lexical=lexical)
    depth = max(RECALL_KS + ((HYBRID_DEPTH,) if lexical else ()))

    def candidates(queries, emb):  # dense hits (and BM25 hits) of each query, `depth` deep
        dense, text = [], []
        for i in range(0, len(emb), 64):
            dense.extend(index.search(emb[i : i + 64], depth))
            if lexical:
                text.extend(index.search_text(queries[i : i + 64], depth))
        return dense, text

    def ranked(cands, weight):
        dense, text = cands
        rows = [hybrid(d, t, weight, max(RECALL_KS)) for d, t in zip(dense, text)] if lexical else dense
        return [[h.text for h in row] for row in rows], [[h.similarity for h in row] for row in rows]

    by_set = {}  # query set -> (queries, candidates)
    t0 = time.perf_counter()
    q_emb = engine.embed(ds["queries"], "query")
    q_embed_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    by_set[ds["name"]] = (ds["queries"], candidates(ds["queries"], q_emb))
    search_s = time.perf_counter() - t0
    for name, (queries, _) in ds.get("more_query_sets", {}).items():
        if queries is ds["queries"]:  # the same queries against other relevant sets
            by_set[name] = by_set[ds["name"]]
        else:
            by_set[name] = (queries, candidates(queries, engine.embed(queries, "query")))
    weight, tune = 0.0, {}
    tune_rel = ds.get("more_query_sets", {}).get(TUNE_SET, (None, None))[1]
    if lexical and tune_rel is not None:  # the weight of the best MRR@10 on training queries (a tie: the smaller)
        tune = {w: mrr_at_k(ranked(by_set[TUNE_SET][1], w)[0], tune_rel, 10) for w in args.lexical_weights}
        weight = args.chosen_lexical_weight = max(tune, key=lambda w: (tune[w], -w))  # 0: the dense order
        print(f"   {HYBRID}: MRR@10 on {TUNE_SET} by lexical weight {tune}; chosen {weight}", flush=True)
    elif lexical:  # CSL has no training queries: the weight chosen on KUAKE-QTR's (kuake_qtr comes first)
        weight = args.chosen_lexical_weight
    lat = []  # one query at a time, end to end: encode + search (+ BM25 search and merge)
    for q in ds["queries"][: args.latency_queries]:
        t = time.perf_counter()
        if lexical:
            ranked(candidates([q], engine.embed([q], "query")), weight)
        else:
            index.search(engine.embed([q], "query"), 10)
        lat.append(time.perf_counter() - t)
    retrieved, sims = ranked(by_set[ds["name"]][1], weight)
    similarity = {ds["name"]: sims}  # for the score fusion
    more = {}
    for name in ds.get("more_query_sets", {}):
        more[name], similarity[name] = ranked(by_set[name][1], weight)
    speed = dict(
        stats,
        query_embed_per_s=round(len(q_emb) / q_embed_s, 1),
        milvus_search_qps=round(len(q_emb) / search_s, 1),
        single_query_ms_median=round(1000 * float(np.median(lat)), 2),
        single_query_qps=round(1 / float(np.median(lat)), 1),
    )
    if lexical:
        speed.update(lexical_weight=weight, tune_mrr10_by_lexical_weight={str(w): round(v, 4) for w, v in tune.items()})
    index.close()
    return retrieved, speed, more, similarity


def eval_bm25(ds):
    from baselines import BM25

    t0 = time.perf_counter()
    bm = BM25(ds["corpus"])
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    retrieved = [[t for t, _ in bm.search(q, max(RECALL_KS))] for q in ds["queries"]]
    s = time.perf_counter() - t0
    more = {
        name: retrieved if queries is ds["queries"] else [[t for t, _ in bm.search(q, max(RECALL_KS))] for q in queries]
        for name, (queries, _) in ds.get("more_query_sets", {}).items()
    }
    return (
        retrieved,
        {
            "docs": len(ds["corpus"]),
            "seconds": round(build_s, 2),
            "search_qps": round(len(ds["queries"]) / s, 1),
        },
        more,
        {},
    )


def choose_weight(by_weight: dict) -> float:
    """The recall weight of the best fused NDCG@10 in {weight: NDCG}; a tie goes to the larger weight
    (the nearer the default 1)."""
    return max(by_weight, key=lambda w: (by_weight[w], w))


def rerank_ndcg(ds, retrieved_by_system, args, label, reranker_dir, similarity_by_system=None):
    """NDCG@10 of each recall system's top --rerank_depth: recall order, re-ranked by the ranker alone,
    and re-ranked by rank fusion (rerank: fused; core.search.fuse: reciprocal-rank fusion of the two
    orders, k=10; core.search.rerank_order, as /search), and fused at each of --recall_weights (the
    search.recall_weight of the recall order); with --score_fusion_weights and the recall similarities
    (similarity_by_system), also by core.search.fuse_scores at each of those weights. Ranker scores
    are cached across systems and runs (scoring_member). reranker_dir "A+B" is an ensemble: the mean
    of the rankers' scores, each min-max scaled over the recalled list (ensemble_scores), is the
    ranker score."""
    from core.search import fuse_scores, rerank_order

    rng = np.random.RandomState(0)
    idx = sorted(rng.permutation(len(ds["queries"]))[: args.rerank_queries].tolist())
    members = [scoring_member(d) for d in reranker_dir.split("+")]
    out = {}
    t0 = time.perf_counter()
    for system, retrieved in retrieved_by_system.items():
        before, after, fused, oracle, relevant = [], [], [], [], []
        orders = {"recall": [], "ranker": [], "fused": []}
        unjudged = {key: [] for key in orders}
        judged_only = {key: [] for key in orders}
        weights = getattr(args, "recall_weights", [1.0])
        by_weight = {w: [] for w in weights}
        other_ks = [k for k in getattr(args, "rrf_ks", [10]) if k != 10]  # k = 10 is by_weight's
        by_k = {(k, w): [] for k in other_ks for w in weights}
        sims = (similarity_by_system or {}).get(system)
        score_weights = getattr(args, "score_fusion_weights", []) if sims else []
        by_score = {w: [] for w in score_weights}
        for i in idx:
            q = ds["queries"][i]
            cand = retrieved[i][: args.rerank_depth]
            per_ranker = []
            for engine, cache in members:
                todo = [t for t in cand if (q, t) not in cache]
                if todo:
                    cache.update(zip([(q, t) for t in todo], engine.score([(q, t) for t in todo])))
                per_ranker.append([cache[(q, t)] for t in cand])
            scores = ensemble_scores(per_ranker)
            by_ranker = [cand[j] for j in rerank_order(scores, "ranker")[0]]
            by_fusion = [cand[j] for j in rerank_order(scores, "fused", 10)[0]]
            ideal = ideal_dcg10(q, label)
            before.append(ndcg10(cand, q, label, ideal))
            after.append(ndcg10(by_ranker, q, label, ideal))
            fused.append(ndcg10(by_fusion, q, label, ideal))
            for w in weights:
                by_weight[w].append(ndcg10([cand[j] for j in rerank_order(scores, "fused", 10, w)[0]], q, label, ideal))
            for k, w in by_k:
                by_k[k, w].append(ndcg10([cand[j] for j in rerank_order(scores, "fused", k, w)[0]], q, label, ideal))
            for w in score_weights:
                order = fuse_scores(sims[i][: len(cand)], scores, w)[0]
                by_score[w].append(ndcg10([cand[j] for j in order], q, label, ideal))
            # the ceiling of any re-ranking of this top 20: its titles sorted by their label
            oracle.append(ndcg10(sorted(cand, key=lambda t: -label.get((q, t), 0)), q, label, ideal))
            for key, ranked in (("recall", cand), ("ranker", by_ranker), ("fused", by_fusion)):
                orders[key].append(ranked)
                unjudged[key].append(sum((q, t) not in label for t in ranked[:10]))
                # the order of the judged titles alone: what is lost to unjudged titles above them is the rest
                judged_only[key].append(ndcg10([t for t in ranked if (q, t) in label], q, label, ideal))
            relevant.append({t for t in cand if label.get((q, t), 0) >= 2})
        out[system] = {
            "ndcg@10_recall_order": round(float(np.mean(before)), 4),
            "ndcg@10_reranked": round(float(np.mean(after)), 4),
            "ndcg@10_fused": round(float(np.mean(fused)), 4),
            "ndcg@10_oracle": round(float(np.mean(oracle)), 4),
            **{f"unjudged@10_{key}": round(float(np.mean(v)), 2) for key, v in unjudged.items()},
            **{f"ndcg@10_judged_only_{key}": round(float(np.mean(v)), 4) for key, v in judged_only.items()},
            **{f"mrr@10_{key}": round(mrr_at_k(ranked, relevant, 10), 4) for key, ranked in orders.items()},
            "ndcg@10_fused_by_recall_weight": {str(w): round(float(np.mean(v)), 4) for w, v in by_weight.items()},
        }
        gain_ci = {"reranked": ci_points(before, after), "fused": ci_points(before, fused)}
        gain_ci["fused_by_recall_weight"] = {str(w): ci_points(before, v) for w, v in by_weight.items()}
        if by_score:
            out[system]["ndcg@10_score_fusion_by_recall_weight"] = {
                str(w): round(float(np.mean(v)), 4) for w, v in by_score.items()
            }
            gain_ci["score_fusion_by_recall_weight"] = {str(w): ci_points(before, v) for w, v in by_score.items()}
        out[system]["ndcg@10_gain_ci95_points"] = gain_ci
        if other_ks:  # {k: {w: NDCG@10}}, k = 10 included
            grid = {"10": out[system]["ndcg@10_fused_by_recall_weight"]}
            for (k, w), v in by_k.items():
                grid.setdefault(str(k), {})[str(w)] = round(float(np.mean(v)), 4)
            out[system]["ndcg@10_fused_by_rrf_k"] = grid
    return {
        "queries": len(idx),
        "depth": args.rerank_depth,
        "systems": out,
        "rerank_seconds": round(time.perf_counter() - t0, 1),
        "reranker": "+".join(os.path.relpath(d, ROOT) for d in reranker_dir.split("+")),
    }


def ci_points(before, after) -> list[float]:
    """95 % paired-bootstrap interval of a gain (NDCG@10, reciprocal rank) over the same queries, in points."""
    return [round(100 * x, 2) for x in paired_bootstrap_ci(before, after)]


def ensemble_scores(per_ranker) -> np.ndarray:
    """One recalled list's scores from several rankers ([ranker][row]): one ranker's own scores, or for
    an ensemble the mean of each ranker's scores min-max scaled over the list (a list of equal scores
    scales to 0), so that no ranker's score range outweighs another's."""
    from core.search import minmax

    if len(per_ranker) == 1:
        return np.asarray(per_ranker[0], dtype=np.float64)
    return np.mean([minmax(values) for values in per_ranker], axis=0)


def choose_k_and_weight(by_k: dict) -> tuple[int, float]:
    """(rrf_k, recall weight) of the best fused NDCG@10 in {k: {weight: NDCG}} (string keys, as in the
    results); a tie goes to the larger weight, then to k = 10 (the default), then to the smaller k."""
    return max(
        ((int(k), float(w)) for k, grid in by_k.items() for w in grid),
        key=lambda kw: (by_k[str(kw[0])][str(kw[1])], kw[1], kw[0] == 10, -kw[0]),
    )


def tune_weights(end_to_end):
    """Each ranker's recall weight for each recall system, chosen on the training queries (TUNE_SET),
    and the fused NDCG@10 at that weight on every query set; with --rrf_ks, also the (rrf_k, weight)
    pair chosen there."""
    for e2e in end_to_end.values():
        tune = next(
            t for t in end_to_end.values() if t["query_set"] == TUNE_SET and t["ranker_name"] == e2e["ranker_name"]
        )
        for system, m in e2e["systems"].items():
            grid = tune["systems"][system]["ndcg@10_fused_by_recall_weight"]
            w = choose_weight({float(k): v for k, v in grid.items()})
            m["tuned_recall_weight"] = w
            m["ndcg@10_fused_tuned"] = m["ndcg@10_fused_by_recall_weight"][str(w)]
            ci = m.get("ndcg@10_gain_ci95_points", {})
            if "fused_by_recall_weight" in ci:
                ci["fused_tuned"] = ci["fused_by_recall_weight"][str(w)]
            if "ndcg@10_score_fusion_by_recall_weight" in m:
                grid = tune["systems"][system]["ndcg@10_score_fusion_by_recall_weight"]
                w = choose_weight({float(k): v for k, v in grid.items()})
                m["tuned_score_fusion_weight"] = w
                m["ndcg@10_score_fusion_tuned"] = m["ndcg@10_score_fusion_by_recall_weight"][str(w)]
                if "score_fusion_by_recall_weight" in ci:
                    ci["score_fusion_tuned"] = ci["score_fusion_by_recall_weight"][str(w)]
            if "ndcg@10_fused_by_rrf_k" in m:
                k, w = choose_k_and_weight(tune["systems"][system]["ndcg@10_fused_by_rrf_k"])
                m["tuned_rrf_k_and_weight"] = [k, w]
                m["ndcg@10_fused_tuned_k"] = m["ndcg@10_fused_by_rrf_k"][str(k)][str(w)]


def plot_weights(end_to_end, path):
    """NDCG@10 of the fused order against the recall weight: one panel per ranker, one line per query set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rankers = list(dict.fromkeys(e["ranker_name"] for e in end_to_end.values()))
    fig, axes = plt.subplots(1, len(rankers), figsize=(6 * len(rankers), 4.2), squeeze=False)
    for ax, ranker in zip(axes[0], rankers):
        for e2e in end_to_end.values():
            if e2e["ranker_name"] != ranker:
                continue
            for system, m in e2e["systems"].items():
                grid = sorted((float(w), v) for w, v in m["ndcg@10_fused_by_recall_weight"].items())
                ax.plot(*zip(*grid), marker="o", label=f"{e2e['query_set']} ({system})")
                color = ax.lines[-1].get_color()
                ax.axhline(m["ndcg@10_recall_order"], ls=":", lw=0.8, color=color)
                if "tuned_recall_weight" in m:  # the weight chosen on the training queries
                    ax.plot(m["tuned_recall_weight"], m["ndcg@10_fused_tuned"], marker="*", ms=14, color=color)
                score = sorted((float(w), v) for w, v in m.get("ndcg@10_score_fusion_by_recall_weight", {}).items())
                if score:  # the score fusion of the same lists, dashed
                    ax.plot(*zip(*score), ls="--", marker=".", color=color, label=f"{e2e['query_set']} score fusion")
                    if "tuned_score_fusion_weight" in m:
                        w = m["tuned_score_fusion_weight"]
                        ax.plot(w, m["ndcg@10_score_fusion_tuned"], marker="P", ms=10, color=color)
        ax.set_xlabel("recall weight of the fusion (1 = default; 0 = ranker order)")
        ax.set_ylabel("NDCG@10 of the top 20\n(dotted: recall order; * and +: weight tuned on train)")
        ax.set_title(f"re-ranked by {ranker or 'the --reranker_dir ranker'}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2))
    axes = np.atleast_1d(axes)
    for ax, (ds, systems) in zip(axes, results.items()):
        for name, m in systems.items():
            ax.plot(RECALL_KS, [m[f"recall@{k}"] for k in RECALL_KS], marker="o", label=name)
        ax.set_xscale("log")
        ax.set_xticks(RECALL_KS)
        ax.set_xticklabels([str(k) for k in RECALL_KS])
        ax.set_xlabel("K")
        ax.set_ylabel("recall@K")
        ax.set_title(ds)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=os.path.join(ROOT, "data"))
    p.add_argument("--kuake_dir", default=os.path.join(ROOT, "..", "shared", "datasets", "kuake_qtr"))
    p.add_argument("--csl_dir", default=os.path.join(ROOT, "..", "shared", "datasets", "csl"))
    p.add_argument("--model_name_or_path", default="multilingual-e5-small")
    p.add_argument("--batch_neg_steps", type=int, default=150)
    p.add_argument("--simcse_steps", type=int, default=100)
    p.add_argument("--mine_recall_num", type=int, default=50, help="titles retrieved per query when mining")
    p.add_argument("--negatives_per_query", type=int, default=4)
    p.add_argument(
        "--denoise_threshold", type=float, default=0.9, help="cross-encoder score that marks a false negative"
    )
    p.add_argument("--distill_weight", type=float, default=1.0)
    p.add_argument(
        "--denoiser_dir",
        default=None,
        help="the exported cross-encoder that denoises and scores mined negatives (default: --reranker_dir)",
    )
    p.add_argument(
        "--teacher_dir",
        default=None,
        help="distilled_graded_e5: the exported ranker whose scores of the mined pairs are the teacher "
        "(e.g. the graded + mined cross-encoder)",
    )
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--learning_rate", type=float, default=3e-5)
    p.add_argument("--datasets", default="kuake_qtr,csl")
    p.add_argument(
        "--systems",
        default="bm25," + ",".join(s for s in E5_SYSTEMS if s != "distilled_graded_e5"),
        help="also distilled_graded_e5 (with --teacher_dir)",
    )
    p.add_argument(
        "--reuse", default="", help="comma-separated e5 systems whose exports from a previous run are reused"
    )
    p.add_argument(
        "--reuse_index",
        action="store_true",
        help="for the --reuse systems, search the Milvus collections of the previous run when they hold the "
        "same corpus (index speed figures are then those of that run)",
    )
    p.add_argument(
        "--reranker_dir",
        default=DEFAULT_RERANKER_DIR,
        help="the exported ranker of the end-to-end rows (DIR_A+DIR_B: an ensemble); the default is skipped "
        "when it has not been trained, a given one that is not an export is refused",
    )
    p.add_argument(
        "--more_rerankers",
        nargs="*",
        default=[],
        help="NAME=EXPORT_DIR: end to end also re-ranked by these, each beside --reranker_dir on the same recall; "
        "NAME=DIR_A+DIR_B re-ranks by an ensemble: the mean of the rankers' min-max scaled scores per list",
    )
    p.add_argument(
        "--external_encoders",
        nargs="*",
        default=[],
        help="NAME=EXPORT_DIR: recall encoders exported elsewhere (recall/export_model.py --onnx), indexed "
        "and evaluated beside --systems",
    )
    p.add_argument("--rerank_depth", type=int, default=20)
    p.add_argument("--rerank_queries", type=int, default=600)
    p.add_argument(
        "--recall_weights",
        default="1",
        help="comma-separated recall weights of the fusion (search.recall_weight) to score end to end",
    )
    p.add_argument(
        "--rrf_ks",
        default="10",
        help="comma-separated k of the fusion, 1/(k + rank) (search.rrf_k), scored with each --recall_weights; "
        "with --tune_queries the best (k, weight) pair on the training queries is reported too",
    )
    p.add_argument(
        "--score_fusion_weights",
        default="",
        help="comma-separated recall weights w of the score fusion, w * minmax(recall similarity) + "
        "minmax(ranker score) (core.search.fuse_scores), scored end to end beside the rank fusion; "
        "with --tune_queries the best on the training queries is reported too",
    )
    p.add_argument(
        "--tune_queries",
        type=int,
        default=0,
        help="training queries (end to end only) on which each ranker's recall weight is chosen among --recall_weights",
    )
    p.add_argument(
        "--lexical_weights",
        default="0,0.0025,0.005,0.01,0.02,0.03",
        help=f"{HYBRID}: the weights of BM25 (search.lexical_weight) tried on the --tune_queries training queries",
    )
    p.add_argument("--latency_queries", type=int, default=100)
    p.add_argument("--note", default="", help="a remark on the run written at the top of the results")
    p.add_argument("--work_dir", default=os.path.join(ROOT, "work_dirs", "recall_quality"))
    p.add_argument(
        "--threads", type=int, default=2, help="CPU threads for training (Paddle sets 1 when OMP_NUM_THREADS is unset)"
    )
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--name", default="recall_quality", help="results file name (benchmarks/results/NAME.md ...)")
    args = p.parse_args()
    try:
        args.recall_weights = [float(w) for w in args.recall_weights.split(",")]
        [check_recall_weight(w) for w in args.recall_weights]
    except (ValueError, DataError) as e:
        p.error(f"--recall_weights {args.recall_weights}: {e}")
    try:
        args.score_fusion_weights = [float(w) for w in args.score_fusion_weights.split(",") if w.strip()]
        [check_recall_weight(w) for w in args.score_fusion_weights]
    except (ValueError, DataError) as e:
        p.error(f"--score_fusion_weights {args.score_fusion_weights}: {e}")
    try:
        args.lexical_weights = [float(w) for w in args.lexical_weights.split(",")]
        [check_lexical_weight(w) for w in args.lexical_weights]
    except (ValueError, DataError) as e:
        p.error(f"--lexical_weights {args.lexical_weights}: {e}")
    if HYBRID in args.systems.split(","):
        if "zero_shot_e5" not in args.systems.split(",") or not args.tune_queries:
            p.error(f"{HYBRID} needs zero_shot_e5 in --systems and --tune_queries (its weight is chosen there)")
        if args.datasets.split(",")[0] != "kuake_qtr":
            p.error(f"{HYBRID} chooses its weight on KUAKE-QTR training queries: put kuake_qtr first in --datasets")
    try:
        args.rrf_ks = [int(k) for k in args.rrf_ks.split(",")]
    except ValueError as e:
        p.error(f"--rrf_ks {args.rrf_ks}: {e}")
    if any(k < 0 for k in args.rrf_ks):
        p.error(f"--rrf_ks {args.rrf_ks}: each k must be 0 or more")
    rerankers = {}  # end-to-end ranker name ("" for --reranker_dir) -> export dir, or dirs joined by "+"
    if all(os.path.isdir(d) for d in args.reranker_dir.split("+")):
        rerankers[""] = args.reranker_dir
    elif args.reranker_dir != DEFAULT_RERANKER_DIR:  # the default is skipped until it has been trained
        p.error(f"--reranker_dir {args.reranker_dir}: expected EXPORT_DIR (an exported ranker) or DIR_A+DIR_B")
    for item in args.more_rerankers:
        ranker, sep, path = item.partition("=")
        if not sep or not rerankers or not all(os.path.isdir(d) for d in path.split("+")):
            p.error(
                f"--more_rerankers {item}: expected NAME=EXPORT_DIR (an exported ranker) or "
                "NAME=EXPORT_DIR+EXPORT_DIR (an ensemble), beside an existing --reranker_dir"
            )
        rerankers[ranker] = path
    from core.inference import set_threads

    set_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    prev_file = os.path.join(args.out, "recall_quality.json")
    args.previous_speed = json.load(open(prev_file)).get("speed", {}) if os.path.isfile(prev_file) else {}
    systems = args.systems.split(",")
    sets = {"kuake_qtr": kuake_set, "csl": csl_set}
    datasets = [sets[n](args) for n in args.datasets.split(",")]
    exports = train_encoders(args, systems) if any(s in E5_SYSTEMS for s in systems) else {}
    external = {}  # exported encoders trained elsewhere (e.g. scripts/train_rocketqa.sh's), searched the same way
    for item in args.external_encoders:
        name, sep, path = item.partition("=")
        if not sep or name in E5_SYSTEMS or not os.path.isfile(os.path.join(path, "inference.onnx")):
            raise SystemExit(
                f"--external_encoders {item}: expected NEW_NAME=EXPORT_DIR (an export with inference.onnx)"
            )
        external[name] = (path, {"external export": os.path.relpath(path, ROOT)})
        systems.append(name)
    exports.update(external)
    index_uri = os.path.join(args.work_dir, "milvus.db")
    results, speed, retrieved_by, more_by, similarity_by = {}, {}, {}, {}, {}
    for ds in datasets:
        results[ds["name"]], speed[ds["name"]] = {}, {}
        print(f"== {ds['name']}: {len(ds['queries'])} queries, {len(ds['corpus'])} documents", flush=True)
        for name in ds.get("more_query_sets", {}):
            if name != TUNE_SET:
                results[name] = {}
        for system in systems:
            if system == "bm25":
                retrieved, sp, more, similarity = eval_bm25(ds)
            else:
                if system in MINED_SYSTEMS and system not in exports:  # mined from the zero-shot index
                    if ds["name"] != "kuake_qtr" or "zero_shot_e5" not in exports:
                        raise SystemExit(f"{system} needs kuake_qtr and zero_shot_e5 first in --datasets/--systems")
                    exports[system] = train_mined(system, args, exports["zero_shot_e5"][0], index_uri)
                retrieved, sp, more, similarity = eval_e5(system, exports[system][0], ds, args, index_uri)
            results[ds["name"]][system] = recall_report(retrieved, ds["relevant"])
            speed[ds["name"]][system] = sp
            retrieved_by[(ds["name"], system)] = retrieved
            for name, got in similarity.items():
                similarity_by[(name, system)] = got
            for name, got in more.items():
                more_by[(name, system)] = got
                if name != TUNE_SET:
                    results[name][system] = recall_report(got, ds["more_query_sets"][name][1])
            for name in [ds["name"], *(n for n in more if n != TUNE_SET)]:
                print(f"   {name} {system}: " + ", ".join(f"{k} {v:.4f}" for k, v in results[name][system].items()))
    end_to_end = {}  # query set -> NDCG@10 of the recalled top --rerank_depth, before and after re-ranking
    kuake = results.get("kuake_qtr", {})
    e5_done = [s for s in systems if (s in E5_SYSTEMS or s in external) and s in kuake]
    if e5_done and rerankers:
        ds = next(d for d in datasets if d["name"] == "kuake_qtr")
        label = graded_kuake(args)
        pick = [s for s in e5_done if s != "simcse_e5"] or e5_done
        query_sets = {"kuake_qtr": ds["queries"]}
        query_sets.update(  # NDCG uses the graded labels of train and dev: one run per distinct query list
            {name: qs for name, (qs, _) in ds.get("more_query_sets", {}).items() if qs is not ds["queries"]}
        )
        for name, queries in query_sets.items():
            by_system = {s: retrieved_by[("kuake_qtr", s)] if name == "kuake_qtr" else more_by[(name, s)] for s in pick}
            sims = {s: similarity_by[(name, s)] for s in pick if (name, s) in similarity_by}
            for ranker, path in rerankers.items():  # the --reranker_dir rows keep the query set's name
                key = f"{name}, re-ranked by {ranker}" if ranker else name
                end_to_end[key] = rerank_ndcg({"queries": queries}, by_system, args, label, path, sims)
                end_to_end[key].update(query_set=name, ranker_name=ranker)
                print(f"== end to end ({key}): {end_to_end[key]}", flush=True)
        if TUNE_SET in query_sets and len(args.recall_weights) > 1:
            tune_weights(end_to_end)
    targets = {}
    if "zero_shot_e5" in kuake and "in_batch_e5" in kuake:
        gain = kuake["in_batch_e5"]["recall@50"] - kuake["zero_shot_e5"]["recall@50"]
        targets["fine_tuned_r50_gain_points"] = round(100 * gain, 2)
        targets["zero_shot_r50_headroom_points"] = round(100 * (1 - kuake["zero_shot_e5"]["recall@50"]), 2)
    targets_ci95 = {}  # the same keys: 95 % paired-bootstrap interval of a gain over the queries, in points
    kuake_ds = next((d for d in datasets if d["name"] == "kuake_qtr"), None)
    mrr_sets = ["kuake_qtr", *[n for n in results if n.startswith("kuake_qtr_")]] if kuake_ds else []
    for name in mrr_sets:  # the MRR@10 targets are KUAKE-QTR's (dev and its query-disjoint split)
        zs = results.get(name, {}).get("zero_shot_e5")
        relevant = kuake_ds["relevant"] if name == "kuake_qtr" else kuake_ds["more_query_sets"][name][1]
        lists = retrieved_by if name == "kuake_qtr" else more_by
        for system in MINED_SYSTEMS + ("in_batch_e5", HYBRID, *external):
            m = results.get(name, {}).get(system)
            if zs and m:
                gain = m["mrr@10"] - zs["mrr@10"]
                key = f"{name} {system}: mrr@10 gain over zero-shot (points; target >= 5)"
                targets[key] = round(100 * gain, 2)
                rr = [reciprocal_ranks(lists[(name, s)], relevant, 10) for s in ("zero_shot_e5", system)]
                targets_ci95[key] = ci_points(*rr)
                targets[f"{name} {system}: recall@5 gain over zero-shot (points; target > 0)"] = round(
                    100 * (m["recall@5"] - zs["recall@5"]), 2
                )
    for name, e2e in end_to_end.items():
        if e2e["query_set"] == TUNE_SET:  # the rankers trained on these queries: no target
            continue
        for system, m in e2e["systems"].items():
            ci = m.get("ndcg@10_gain_ci95_points", {})
            chosen = "(chosen on training queries) - recall order, NDCG@10 points (target >= 3)"
            rows = []  # (target text, NDCG@10 of the order, the key of its interval)
            if "tuned_recall_weight" in m:
                text = f"fused at recall weight {m['tuned_recall_weight']:g} {chosen}"
                rows.append((text, m["ndcg@10_fused_tuned"], "fused_tuned"))
            if "tuned_score_fusion_weight" in m:
                text = f"score fusion at recall weight {m['tuned_score_fusion_weight']:g} {chosen}"
                rows.append((text, m["ndcg@10_score_fusion_tuned"], "score_fusion_tuned"))
            if "tuned_rrf_k_and_weight" in m:
                k, w = m["tuned_rrf_k_and_weight"]
                rows.append((f"fused at rrf_k {k}, recall weight {w:g} {chosen}", m["ndcg@10_fused_tuned_k"], None))
            rows.append(
                ("ranker alone - recall order, NDCG@10 points (target >= 2)", m["ndcg@10_reranked"], "reranked")
            )
            rows.append(("fused - recall order, NDCG@10 points (target >= 3)", m["ndcg@10_fused"], "fused"))
            for text, ndcg, ci_key in rows:
                targets[f"{name} {system}: {text}"] = round(100 * (ndcg - m["ndcg@10_recall_order"]), 2)
                if ci_key in ci:
                    targets_ci95[f"{name} {system}: {text}"] = ci[ci_key]
    png = os.path.join(args.out, args.name + "_recall_at_k.png")
    os.makedirs(args.out, exist_ok=True)
    plot(results, png)
    weights_png = None
    if any(
        len(m.get("ndcg@10_fused_by_recall_weight", {})) > 1 for e in end_to_end.values() for m in e["systems"].values()
    ):
        weights_png = os.path.join(args.out, args.name + "_fusion_weight.png")
        plot_weights(end_to_end, weights_png)
    trained = {s: exports[s][1] for s in exports}
    data = {
        "results": results,
        "speed": speed,
        "end_to_end": end_to_end,
        "targets": targets,
        "targets_ci95_points": targets_ci95,
        "trained": trained,
        "datasets": {
            **{
                d["name"]: {
                    "queries": len(d["queries"]),
                    "documents": len(d["corpus"]),
                    "max_seq_length": d["max_seq_length"],
                }
                for d in datasets
            },
            **{
                name: {"queries": len(qs), "documents": len(d["corpus"]), "max_seq_length": d["max_seq_length"]}
                for d in datasets
                for name, (qs, _) in d.get("more_query_sets", {}).items()
            },
        },
        "plot": os.path.basename(png),
        "fusion_weight_plot": weights_png and os.path.basename(weights_png),
        "recall_weights": args.recall_weights,
        "rrf_ks": args.rrf_ks,
        "score_fusion_weights": args.score_fusion_weights,
        "tune_queries": args.tune_queries,
    }
    data["note"] = args.note
    body = f"{args.note}\n\n" if args.note else ""
    for name, rows in results.items():
        ds = data["datasets"][name]
        body += f"## {name} ({ds['queries']} queries, {ds['documents']} documents)\n\n"
        keys = list(next(iter(rows.values())))
        body += report.table(["system"] + keys, [[s] + [f"{m[k]:.4f}" for k in keys] for s, m in rows.items()]) + "\n\n"
    body += "## Speed (2 threads; e5 on ONNX Runtime fp32, Milvus Lite HNSW)\n\n"
    rows = []
    for name, sp in speed.items():
        for s, v in sp.items():
            if s == "bm25":
                rows.append([name, s, v["docs"], v["seconds"], "-", "-", v["search_qps"], "-"])
            else:
                rows.append(
                    [
                        name,
                        s,
                        v["docs"],
                        v["seconds"],
                        v["docs_per_s"],
                        v["index_seconds"],
                        v["milvus_search_qps"],
                        v["single_query_ms_median"],
                    ]
                )
    body += (
        report.table(
            [
                "dataset",
                "system",
                "docs",
                "index build (s)",
                "embed docs/s",
                "insert (s)",
                "search QPS (batched)",
                "one query end to end (ms, median)",
            ],
            rows,
        )
        + "\n\n"
    )
    for name, e2e in end_to_end.items():
        body += (
            f"## End to end on {name}: recall then re-rank\n\n"
            f"Top {e2e['depth']} recalled for {e2e['queries']} queries, re-ranked by "
            f"{e2e['reranker']}. NDCG@10 with the graded labels 0..3 of every judged (query, title) "
            "of train and dev (unjudged titles count 0). fused = rerank: fused, reciprocal-rank fusion, "
            "1/(10 + rank), of the recall order and the ranker's order (what /search, recall.search and "
            f"run_system.py return by default is rerank: {DEFAULT_RERANK}; score_fused at weight 1 is in the "
            "Score fusion table); ranker alone = rerank: ranker (PaddleNLP's order). MRR@10: the first "
            "title judged relevant (label >= 2, train or dev) in the same top 20, recall order / ranker / "
            "fused (the ranker's MRR@10 on the recall's own top 20). oracle = the same top 20 sorted by "
            "label, the most any re-ranking of it can reach. unjudged in top 10 = titles with no label for "
            "the query, on average, in each order's top 10 (they count 0 whether relevant or not). judged "
            "titles only = NDCG@10 of each order with its unjudged titles taken out: how well it orders the "
            "judged titles; its gap to the full NDCG@10 is what unjudged titles above judged ones cost.\n\n"
        )
        body += (
            report.table(
                [
                    "recall system",
                    "recall order",
                    "ranker alone",
                    "fused (RRF)",
                    "oracle",
                    "MRR@10 recall / ranker / fused",
                    "unjudged in top 10, recall / ranker / fused",
                    "judged titles only, recall / ranker / fused",
                ],
                [
                    [
                        s,
                        m["ndcg@10_recall_order"],
                        m["ndcg@10_reranked"],
                        m["ndcg@10_fused"],
                        m.get("ndcg@10_oracle", "-"),
                        f"{m['mrr@10_recall']} / {m['mrr@10_ranker']} / {m['mrr@10_fused']}",
                        " / ".join(str(m.get(f"unjudged@10_{k}", "-")) for k in ("recall", "ranker", "fused")),
                        " / ".join(str(m.get(f"ndcg@10_judged_only_{k}", "-")) for k in ("recall", "ranker", "fused")),
                    ]
                    for s, m in e2e["systems"].items()
                ],
            )
            + "\n\n"
        )
    if weights_png:
        body += (
            "## Fusion weight\n\nNDCG@10 of the fused order, w/(10 + recall rank) + 1/(10 + ranker rank), "
            "at each recall weight w (search.recall_weight; 1 = the default, 0 = the ranker's order with ties "
            f"in recall order). * = the weight chosen on {args.tune_queries} training queries "
            f"({TUNE_SET}: queries of data/recall/train.csv; the rankers trained on their pairs, so their "
            "own row is in-sample), the weight each other row's target uses.\n\n"
        )
        rows = []
        for name, e2e in end_to_end.items():
            for system, m in e2e["systems"].items():
                grid = m["ndcg@10_fused_by_recall_weight"]
                mark = {str(m.get("tuned_recall_weight")): "*"}
                rows.append(
                    [name, system, m["ndcg@10_recall_order"]] + [f"{v}{mark.get(w, '')}" for w, v in grid.items()]
                )
        body += report.table(["query set", "recall system", "recall order"] + [f"w = {w}" for w in grid], rows)
        body += f"\n\n![fusion weight]({os.path.basename(weights_png)})\n\n"
        rows = []
        for name, e2e in end_to_end.items():
            for system, m in e2e["systems"].items():
                chosen = m.get("tuned_rrf_k_and_weight")
                for k, by_w in sorted(m.get("ndcg@10_fused_by_rrf_k", {}).items(), key=lambda kv: int(kv[0])):
                    cells = [f"{v}{'*' if chosen == [int(k), float(w)] else ''}" for w, v in by_w.items()]
                    rows.append([name, system, k, *cells])
        if rows:
            body += (
                "## Fusion k\n\nNDCG@10 of the fused order, w/(k + recall rank) + 1/(k + ranker rank), at each k "
                f"(search.rrf_k; 10 = the default) and recall weight w. * = the pair chosen on {TUNE_SET}.\n\n"
            )
            body += report.table(["query set", "recall system", "k"] + [f"w = {w}" for w in by_w], rows) + "\n\n"
    rows = []
    for name, e2e in end_to_end.items():
        for system, m in e2e["systems"].items():
            grid = m.get("ndcg@10_score_fusion_by_recall_weight")
            if grid:
                mark = {str(m.get("tuned_score_fusion_weight")): "*"}
                rows.append([name, system, m["ndcg@10_recall_order"], m["ndcg@10_reranked"]])
                rows[-1] += [f"{v}{mark.get(w, '')}" for w, v in grid.items()]
    if rows:
        body += (
            "## Score fusion\n\nNDCG@10 of the same top 20 ordered by w * minmax(recall similarity) + "
            "minmax(ranker score), each scaled to [0, 1] over the query's list (core.search.fuse_scores), at each "
            f"recall weight w (w = 0: the ranker alone). * = the weight chosen on {TUNE_SET}.\n\n"
        )
        head = ["query set", "recall system", "recall order", "ranker alone"] + [f"w = {w}" for w in grid]
        body += report.table(head, rows) + "\n\n"
    body += "## Targets\n\n[lo, hi]: the 95 % paired-bootstrap interval of a gain over the queries.\n\n"
    body += (
        "\n".join(
            f"- {k}: {v}" + (f" [{targets_ci95[k][0]}, {targets_ci95[k][1]}]" if k in targets_ci95 else "")
            for k, v in targets.items()
        )
        + "\n\n"
    )
    body += "## What was trained\n\n" + "\n".join(
        f"- {s}: {json.dumps(i, ensure_ascii=False)}" for s, i in trained.items()
    )
    body += f"\n\n![recall@K]({os.path.basename(png)})\n"
    report.write(args.out, args.name, data, body)


if __name__ == "__main__":
    main()
