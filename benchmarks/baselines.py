"""Unsupervised relevance baselines: character Jaccard, BM25 over jieba words, zero-shot e5 cosine."""

import numpy as np

from core.text import char_jaccard


def jaccard_scores(pairs):
    return np.array([char_jaccard(q, t) for q, t in pairs], dtype=np.float64)


def jieba_tokens(text):
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return [w for w in jieba.lcut_for_search(text.lower()) if w.strip()]


class BM25:
    """BM25 (rank_bm25's Okapi) over jieba tokens, with statistics from `corpus` texts."""

    def __init__(self, corpus):
        from rank_bm25 import BM25Okapi

        self.docs = list(dict.fromkeys(corpus))
        self.index = {d: i for i, d in enumerate(self.docs)}
        self.bm25 = BM25Okapi([jieba_tokens(d) or ["<empty>"] for d in self.docs])

    def score_pairs(self, pairs):
        out = np.zeros(len(pairs))
        for i, (q, t) in enumerate(pairs):
            out[i] = self.bm25.get_batch_scores(jieba_tokens(q), [self.index[t]])[0]
        return out

    def search(self, query, top_k=10):
        scores = self.bm25.get_scores(jieba_tokens(query))
        top = np.argsort(-scores, kind="mergesort")[:top_k]
        return [(self.docs[i], float(scores[i])) for i in top]


def e5_embed(texts, model, tokenizer, prefix, batch_size=64, max_seq_length=128):
    """L2-normalised mean-pooled embeddings of `prefix + text` with a (converted e5) backbone."""
    import paddle

    from core.data import pad, run_by_length
    from core.pooling import encode

    ids = [
        [tokenizer.bos_token_id] + x[: max_seq_length - 2] + [tokenizer.eos_token_id]
        for x in tokenizer.encode_fast([prefix + t for t in texts])
    ]
    model.eval()
    with paddle.no_grad():
        out = run_by_length(
            ids,
            batch_size,
            lambda batch: encode(
                model, paddle.to_tensor(pad(batch, tokenizer.pad_token_id)), None, "mean", tokenizer.pad_token_id
            ).numpy(),
        )
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def e5_cosine_scores(pairs, model, tokenizer):
    queries = sorted({q for q, _ in pairs})
    titles = sorted({t for _, t in pairs})
    qv = dict(zip(queries, e5_embed(queries, model, tokenizer, "query: ")))
    tv = dict(zip(titles, e5_embed(titles, model, tokenizer, "passage: ")))
    return np.array([float(qv[q] @ tv[t]) for q, t in pairs])
