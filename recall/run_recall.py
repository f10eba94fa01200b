"""Recall top-K titles for every query of a file from the Milvus index (PaddleNLP's recall.py output).

    python recall/run_recall.py --model_dir output/recall_encoder --similar_text_pair_file data/recall/dev.csv \
        --recall_result_dir recall_result_dir --recall_result_file recall_result.txt --recall_num 50
Writes `query\\trecalled_text\\tsimilarity` lines, best first for each query; recall/evaluate.py scores them.
The query file is query\\ttitle pairs (each distinct query is searched once) or one query per line.
"""

import argparse
import os
import sys
import time

from core.cli import run_cli
from recall.build_index import add_engine_args, add_index_args, encoder_engine


def read_queries(path):
    from core.data import read_tsv

    seen = {}
    for r in read_tsv(path, ("query", "title"), optional=1):
        seen.setdefault(r["query"], None)
    return list(seen)


def recall_all(engine, index, queries, recall_num, batch_size=64):
    """-> (list of hit lists, seconds spent searching Milvus)."""
    from tqdm import tqdm

    results, search_s = [], 0.0
    for i in tqdm(range(0, len(queries), batch_size), desc="recall", unit="batch", file=sys.stdout, mininterval=2.0):
        chunk = queries[i : i + batch_size]
        emb = engine.embed(chunk, "query")
        t0 = time.perf_counter()
        results.extend(index.search(emb, recall_num))
        search_s += time.perf_counter() - t0
    return results, search_s


def write_results(path, queries, results):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for q, hits in zip(queries, results):
            for h in hits:
                f.write(f"{q}\t{h.text}\t{h.similarity:.6f}\n")
    os.replace(tmp, path)


def main(argv=None):
    from core.index import MilvusIndex

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="the exported recall encoder that built the index")
    p.add_argument("--similar_text_pair_file", required=True, help="query\\ttitle pairs, or one query per line")
    p.add_argument("--recall_result_dir", default="recall_result_dir")
    p.add_argument("--recall_result_file", default="recall_result.txt")
    p.add_argument("--recall_num", type=int, default=50)
    add_index_args(p)
    add_engine_args(p)
    args = p.parse_args(argv)
    queries = read_queries(args.similar_text_pair_file)
    index = MilvusIndex(args.milvus_uri, args.collection, token=args.milvus_token)
    index.info()  # a missing index fails here, before the model loads
    engine = encoder_engine(args)
    results, search_s = recall_all(engine, index, queries, args.recall_num)
    out = os.path.join(args.recall_result_dir, args.recall_result_file)
    write_results(out, queries, results)
    print(
        f"recalled {args.recall_num} per query for {len(queries)} queries -> {out} "
        f"(Milvus search {len(queries) / max(search_s, 1e-9):.0f} queries/s)"
    )
    index.close()
    return out


if __name__ == "__main__":
    run_cli(main)
