"""Dual-encoder side of the search system: one text -> one L2-normalised embedding."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from core.backbone import hidden_size
from core.checkpoint import RANKER
from core.pooling import encode


class SemanticIndexEncoder(nn.Layer):
    """Backbone + pooling (+ optional Linear to output_emb_size) + L2 normalisation."""

    def __init__(self, pretrained_model, pooling="mean", output_emb_size=0, pad_token_id=0):
        super().__init__()
        self.ptm = pretrained_model
        self.pooling = pooling
        self.pad_token_id = pad_token_id
        self.output_emb_size = output_emb_size or 0
        if self.output_emb_size:
            self.emb_reduce_linear = nn.Linear(hidden_size(pretrained_model), self.output_emb_size)

    def forward(self, input_ids, token_type_ids=None):
        pooled = encode(self.ptm, input_ids, token_type_ids, self.pooling, self.pad_token_id)
        if self.output_emb_size:
            pooled = self.emb_reduce_linear(pooled)
        return F.normalize(pooled, p=2, axis=-1)

    def predict(self, input_ids, token_type_ids=None):
        return self.forward(input_ids, token_type_ids)


class InBatchNegativeLoss(nn.Layer):
    """Dual-encoder training objective (PaddleNLP's SemanticIndexBatchNeg and SimCSE).

    Every query's title is its positive; the other titles of the batch are its negatives.
    sim = q . t^T (cosine, the embeddings are normalised); the positive's similarity is lowered
    by `margin`; logits = scale * sim; cross-entropy towards the diagonal. SimCSE uses the same
    objective with a text and itself (dropout makes the two embeddings differ).
    One backbone pass encodes queries and titles together.
    """

    def __init__(self, encoder, margin=0.2, scale=30.0):
        super().__init__()
        self.encoder = encoder
        self.margin = margin
        self.scale = scale

    def forward(self, query_input_ids, query_token_type_ids, title_input_ids, title_token_type_ids):
        pad = self.encoder.pad_token_id
        width = max(query_input_ids.shape[1], title_input_ids.shape[1])

        def widen(x, value):
            extra = width - x.shape[1]
            return x if extra == 0 else paddle.concat([x, paddle.full([x.shape[0], extra], value, x.dtype)], axis=1)

        n = query_input_ids.shape[0]
        emb = self.encoder(
            paddle.concat([widen(query_input_ids, pad), widen(title_input_ids, pad)]),
            paddle.concat([widen(query_token_type_ids, 0), widen(title_token_type_ids, 0)]),
        )
        q, t = emb[:n], emb[n:]
        sim = paddle.matmul(q, t, transpose_y=True)
        sim = sim - self.margin * paddle.eye(n, dtype=sim.dtype)
        labels = paddle.arange(n, dtype="int64").unsqueeze(-1)
        return F.cross_entropy(sim * self.scale, labels)


def build(model_name_or_path, params_path=None, pooling="auto", output_emb_size=0, dropout=None):
    """(encoder, tokenizer, backbone config, meta); with params_path the weights come from there.

    dropout sets the backbone's hidden and attention dropout (SimCSE's augmentation)."""
    from core import backbone, checkpoint
    from core.ranker import backbone_source

    src = backbone_source(params_path, model_name_or_path)
    tokenizer = backbone.load_tokenizer(src)
    meta = checkpoint.read_meta(params_path) if params_path else {}
    drop = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    ptm = backbone.init_backbone(src, **drop) if params_path else backbone.load_backbone(src, **drop)
    pooling = meta.get("pooling") or backbone.pooling_mode(ptm, pooling)
    output_emb_size = meta.get("output_emb_size", output_emb_size)
    model = SemanticIndexEncoder(
        ptm, pooling=pooling, output_emb_size=output_emb_size, pad_token_id=tokenizer.pad_token_id or 0
    )
    if params_path:
        checkpoint.load_params(model, params_path)
    prefixes = ("query: ", "passage: ") if getattr(ptm.config, "pooling_mode", None) == "mean" else ("", "")
    meta = {
        "kind": "encoder",
        "pooling": pooling,
        "output_emb_size": output_emb_size,
        "query_prefix": meta.get("query_prefix", prefixes[0]),
        "passage_prefix": meta.get("passage_prefix", prefixes[1]),
    }
    return model, tokenizer, ptm.config, meta


def export(model, tokenizer, meta, output_path):
    """Static graph: feeds input_ids, token_type_ids; output the normalised embedding [batch, dim]."""
    import json
    import os

    from core.ranker import export_static

    export_static(model, output_path, output_name="output_embedding")
    tokenizer.save_pretrained(output_path)
    with open(os.path.join(output_path, RANKER), "w") as f:
        json.dump(
            dict(meta, inputs=["input_ids", "token_type_ids"], output="output_embedding [batch, dim]"), f, indent=1
        )
    return output_path
