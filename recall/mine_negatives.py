"""Mine hard negatives for training (RocketQA): retrieve, drop the known positives, denoise with a cross-encoder.

    python recall/mine_negatives.py --model_dir output/recall_encoder --ranker_dir output/cross_encoder \
        --train_file data/recall/train.csv --output data/recall/hard_negatives.tsv \
        --recall_num 50 --negatives_per_query 4 --denoise_threshold 0.9

For each distinct query of --train_file (query\\ttitle rows: its titles are its positives; --positives_file
adds graded query\\ttitle\\tlabel rows, label >= --positive_label counting as positive):
  1. the recall encoder embeds it and the Milvus index returns the top --recall_num titles;
  2. its known positives are dropped;
  3. the cross-encoder (--ranker_dir, an exported ranker) scores the rest in retrieval order (a few more
     than needed at a time, until enough are kept); titles it scores at or above --denoise_threshold are
     likely unlabelled positives (false negatives) and are dropped;
  4. the --negatives_per_query best-retrieved remaining titles are its hard negatives.
Output: PaddleNLP's pairwise TSV, `query\\ttitle\\tneg_title` (one row per positive and negative), which
ernie_matching/train_pairwise.py trains on and recall/train_batch_neg.py takes as --hard_negatives_file;
and beside it (--scores_output, default OUTPUT.scores.tsv) `query\\ttitle\\tscore`, the cross-encoder's
score of every positive and kept negative (a teacher's scores for distillation).
Resumable: queries already in --output are skipped and new rows are appended, one query at a time.
"""

import argparse
import os
import sys

from core.cli import run_cli
from recall.build_index import add_engine_args, add_index_args, encoder_engine


def read_positives(train_file, positives_file=None, positive_label=2):
    """{query: [positive titles in first-seen order]}; bad rows are named by file and line."""
    from core.data import read_labeled_pairs, read_tsv

    pos = {}
    for r in read_tsv(train_file, ("query", "title")):
        pos.setdefault(r["query"], {})[r["title"]] = None
    if positives_file:
        for r in read_labeled_pairs(positives_file, label_values=range(0, 10)):
            if r["label"] >= positive_label and r["query"] in pos:
                pos[r["query"]][r["title"]] = None
    return {q: list(t) for q, t in pos.items()}


def done_queries(path):
    """Queries already written to a (possibly interrupted) output file; a torn last line is cut off."""
    if not os.path.isfile(path):
        return set()
    with open(path, "rb") as f:
        data = f.read()
    keep = data[: data.rfind(b"\n") + 1]
    if len(keep) != len(data):
        with open(path, "wb") as f:
            f.write(keep)
    return {line.split(b"\t", 1)[0].decode("utf-8") for line in keep.splitlines() if line}


def mine(queries, positives, engine, index, ranker, args, out, scores_out):
    """Writes the rows of each query of `queries`; returns (queries written, negatives, dropped as false)."""
    from tqdm import tqdm

    written = negatives = denoised = 0
    bar = tqdm(total=len(queries), desc="mining", unit="query", file=sys.stdout, mininterval=2.0)
    for i in range(0, len(queries), args.query_batch):
        chunk = queries[i : i + args.query_batch]
        hits = index.search(engine.embed(chunk, "query"), args.recall_num)
        for q, hs in zip(chunk, hits):
            known = set(positives[q])
            cands = list(dict.fromkeys(h.text for h in hs if h.text not in known))
            pos = positives[q]
            # candidates are scored in retrieval order, a few more than needed at a time, until enough are
            # kept: the first engine call holds the positives too
            kept, start, step = [], 0, 2 * args.negatives_per_query
            scores = ranker.score([(q, t) for t in pos + cands[:step]])
            pos_scores, cand_scores = scores[: len(pos)], scores[len(pos) :]
            while True:
                for t, s in zip(cands[start : start + step], cand_scores):
                    if s < args.denoise_threshold and len(kept) < args.negatives_per_query:
                        kept.append((t, float(s)))
                    elif s >= args.denoise_threshold:
                        denoised += 1
                start += step
                if len(kept) >= args.negatives_per_query or start >= len(cands):
                    break
                cand_scores = ranker.score([(q, t) for t in cands[start : start + step]])
            scored = list(zip(pos, pos_scores)) + kept
            scores_out.write("".join(f"{q}\t{t}\t{float(s):.6f}\n" for t, s in scored))
            scores_out.flush()  # before the main file: a query in --output has its scores written
            out.write("".join(f"{q}\t{p}\t{t}\n" for p in positives[q] for t, _ in kept))
            out.flush()
            written += 1
            negatives += len(kept)
        bar.update(len(chunk))
    bar.close()
    return written, negatives, denoised


def main(argv=None):
    from core.engine import RankerEngine
    from core.index import MilvusIndex
    from core.inference import default_threads

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="the exported recall encoder that built the index")
    p.add_argument("--ranker_dir", required=True, help="an exported cross-encoder (or pairwise ranker) for denoising")
    p.add_argument("--train_file", required=True, help="query\\ttitle rows: the queries and their positives")
    p.add_argument("--positives_file", default=None, help="query\\ttitle\\tlabel rows with more positives")
    p.add_argument("--positive_label", type=int, default=2, help="labels >= this in --positives_file are positive")
    p.add_argument("--output", required=True, help="query\\ttitle\\tneg_title rows (appended)")
    p.add_argument("--scores_output", default=None, help="query\\ttitle\\tscore rows (default OUTPUT.scores.tsv)")
    p.add_argument("--recall_num", type=int, default=50)
    p.add_argument("--negatives_per_query", type=int, default=4)
    p.add_argument(
        "--denoise_threshold",
        type=float,
        default=0.9,
        help="retrieved titles the ranker scores at or above this are dropped as likely false negatives",
    )
    p.add_argument("--query_batch", type=int, default=32, help="queries embedded and searched together")
    add_index_args(p)
    add_engine_args(p)
    args = p.parse_args(argv)
    for flag in ("recall_num", "negatives_per_query", "query_batch"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} must be at least 1")
    if not 0.0 < args.denoise_threshold <= 1.0:
        p.error(f"--denoise_threshold {args.denoise_threshold}: must be within (0, 1]")

    positives = read_positives(args.train_file, args.positives_file, args.positive_label)
    done = done_queries(args.output)
    todo = [q for q in positives if q not in done]
    index = MilvusIndex(args.milvus_uri, args.collection, token=args.milvus_token)
    index.info()  # a missing index fails here, before the models load
    engine = encoder_engine(args)
    ranker = RankerEngine(
        args.ranker_dir,
        backend=args.backend,
        max_seq_length=args.max_seq_length,
        cpu_threads=default_threads(args.cpu_threads),
        batch_size=args.batch_size,
        replicas=args.replicas,
    )
    if done:
        print(f"resuming: {len(done)} of {len(positives)} queries already in {args.output}")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    scores_path = args.scores_output or args.output + ".scores.tsv"
    done_queries(scores_path)  # cut a torn last line
    with open(args.output, "a", encoding="utf-8") as out, open(scores_path, "a", encoding="utf-8") as scores_out:
        written, negatives, denoised = mine(todo, positives, engine, index, ranker, args, out, scores_out)
    index.close()
    print(
        f"mined {negatives} hard negatives for {written} queries -> {args.output} "
        f"({denoised} retrieved titles dropped as likely false negatives, ranker score >= {args.denoise_threshold})"
    )
    return {"queries": written, "negatives": negatives, "denoised": denoised}


if __name__ == "__main__":
    run_cli(main)
