"""Embed a corpus with an exported recall encoder and index it in Milvus (Milvus Lite by default).

    python recall/build_index.py --model_dir output/recall_encoder --corpus_file data/recall/corpus.csv \
        --milvus_uri work_dirs/milvus.db --collection kuake_titles
--milvus_uri is a local .db path (Milvus Lite, embedded) or a server address (http://host:19530);
the code is the same. A rebuild writes a new collection and switches the name to it only when it
is complete: searches keep using the old one meanwhile, and a failed rebuild leaves it as it was.
--output_emb_file also saves the corpus embeddings as .npy (PaddleNLP's feature_extract.py).
--lexical also indexes each text's BM25 (Milvus's BM25 function over jieba tokens), for hybrid
recall: search.lexical_weight in the server config, --lexical_weight of recall/search.py.
"""

import argparse
import os
import sys
import time

from core.cli import run_cli
from core.inference import BACKENDS, default_threads

DEFAULT_URI = "work_dirs/milvus.db"
DEFAULT_COLLECTION = "kuake_titles"


def add_index_args(p):
    p.add_argument("--milvus_uri", default=DEFAULT_URI, help="Milvus Lite .db path or http://host:port of a server")
    p.add_argument("--milvus_token", default=None, help="user:password or API key of a Milvus server")
    p.add_argument("--collection", default=DEFAULT_COLLECTION, help="index (collection alias) name")


def add_engine_args(p):
    p.add_argument("--backend", default="paddle", choices=BACKENDS)
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=64, help="texts per inference batch")
    p.add_argument("--cpu_threads", type=int, default=None, help="default: $OMP_NUM_THREADS or 2")
    p.add_argument("--replicas", type=int, default=1, help="engine sessions side by side, sharing --cpu_threads")


def encoder_engine(args):
    from core.engine import EncoderEngine

    threads = default_threads(args.cpu_threads)
    return EncoderEngine(
        args.model_dir,
        backend=args.backend,
        max_seq_length=args.max_seq_length,
        cpu_threads=threads,
        batch_size=args.batch_size,
        replicas=args.replicas,
    )


def build(
    engine,
    texts,
    index,
    insert_batch=1024,
    index_type="HNSW",
    hnsw_m=16,
    hnsw_ef=200,
    embeddings_out=None,
    desc="embedding",
    lexical=False,
):
    """Embed and index texts with a progress bar (docs/s). Returns (info, stats)."""
    import numpy as np
    from tqdm import tqdm

    dim = engine.embed(texts[:1], "passage").shape[1]
    kept = [] if embeddings_out else None
    bar = tqdm(total=len(texts), desc=desc, unit="doc", mininterval=2.0, file=sys.stdout)
    t_embed = [0.0]

    def embed(chunk):
        t0 = time.perf_counter()
        out = engine.embed(chunk, "passage")
        t_embed[0] += time.perf_counter() - t0
        if kept is not None:
            kept.append(out)
        return out

    t0 = time.perf_counter()
    info = index.build(
        texts,
        embed,
        dim,
        batch_size=insert_batch,
        index_type=index_type,
        hnsw_m=hnsw_m,
        ef_construction=hnsw_ef,
        meta={"encoder": os.path.basename(os.path.normpath(engine.model_dir))},
        progress=lambda done, total: bar.update(done - bar.n),
        lexical=lexical,
    )
    bar.close()
    total = time.perf_counter() - t0
    if kept is not None:
        np.save(embeddings_out, np.concatenate(kept))
    stats = {
        "docs": len(texts),
        "seconds": round(total, 2),
        "embed_seconds": round(t_embed[0], 2),
        "docs_per_s": round(len(texts) / t_embed[0], 1),
        "index_seconds": round(total - t_embed[0], 2),
    }
    return info, stats


def main(argv=None):
    from core.data import read_corpus
    from core.index import INDEX_TYPES, TEXT_MAX_BYTES, MilvusIndex

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="an exported recall encoder (recall/export_model.py)")
    p.add_argument("--corpus_file", required=True, help="one text per line")
    add_index_args(p)
    add_engine_args(p)
    p.add_argument("--index_type", default="HNSW", choices=INDEX_TYPES)
    p.add_argument("--hnsw_m", type=int, default=16)
    p.add_argument("--hnsw_ef", type=int, default=200, help="HNSW efConstruction")
    p.add_argument("--output_emb_file", default=None, help="also save the embeddings as .npy")
    p.add_argument("--lexical", action="store_true", help="also index BM25 of the texts, for hybrid recall")
    args = p.parse_args(argv)
    texts = read_corpus(args.corpus_file, TEXT_MAX_BYTES)  # every row is checked before anything is touched
    engine = encoder_engine(args)
    index = MilvusIndex(args.milvus_uri, args.collection, token=args.milvus_token)
    before = index.info()["collection"] if index.exists() else None
    dropped = index.drop_stale()
    if dropped:
        print(f"dropped {len(dropped)} collection(s) left by earlier interrupted builds: {', '.join(dropped)}")
    print(
        f"indexing {len(texts)} texts from {args.corpus_file} into '{args.collection}' at {args.milvus_uri}"
        + (f" (replacing {before} when complete)" if before else ""),
        flush=True,
    )
    info, stats = build(
        engine,
        texts,
        index,
        index_type=args.index_type,
        hnsw_m=args.hnsw_m,
        hnsw_ef=args.hnsw_ef,
        embeddings_out=args.output_emb_file,
        lexical=args.lexical,
    )
    print(
        f"index '{args.collection}' -> {info['collection']}: {info['rows']} rows, dim {info['dim']}"
        + (", with BM25; " if args.lexical else "; ")
        + f"{stats['seconds']}s ({stats['docs_per_s']} docs/s embedding, {stats['index_seconds']}s inserting)",
        flush=True,
    )
    index.close()
    return info, stats


if __name__ == "__main__":
    run_cli(main)
