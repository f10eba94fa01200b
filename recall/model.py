"""Dual-encoder side of the search system: one text -> one L2-normalised embedding."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from core.backbone import hidden_size
from core.checkpoint import RANKER
from core.pooling import concat_padded, encode


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

    Every query's title is its positive; the other titles of the batch are its negatives, and so are
    the batch's mined hard negatives when there are any.
    sim = q . t^T (cosine, the embeddings are normalised); the positive's similarity is lowered
    by `margin`; logits = scale * sim; cross-entropy towards the diagonal. SimCSE uses the same
    objective with a text and itself (dropout makes the two embeddings differ).
    One backbone pass encodes queries and titles together.
    """

    def __init__(self, encoder, margin=0.2, scale=30.0, distill_weight=1.0):
        super().__init__()
        self.encoder = encoder
        self.margin = margin
        self.scale = scale
        self.distill_weight = distill_weight

    def forward(
        self,
        query_input_ids,
        query_token_type_ids,
        title_input_ids,
        title_token_type_ids,
        neg_input_ids=None,
        neg_token_type_ids=None,
        neg_rows=None,
        teacher_margin=None,
    ):
        """neg_*: mined hard negatives (RocketQA), added to every query's negatives beside the batch's titles.
        neg_rows[k]: the batch row whose query negative k was mined for. teacher_margin[k]: a cross-encoder's
        logit(p(query, title)) - logit(p(query, negative)) for that row; with it, margin-MSE distillation
        (the student's scale * (cos(q, title) - cos(q, negative)) towards it) is added to the loss."""
        n = query_input_ids.shape[0]
        ids = concat_padded(query_input_ids, title_input_ids, self.encoder.pad_token_id)
        types = concat_padded(query_token_type_ids, title_token_type_ids, 0)
        if neg_input_ids is not None:
            ids = concat_padded(ids, neg_input_ids, self.encoder.pad_token_id)
            types = concat_padded(types, neg_token_type_ids, 0)
        emb = self.encoder(ids, types)
        q, t = emb[:n], emb[n:]
        sim = paddle.matmul(q, t, transpose_y=True)
        sim = sim - self.margin * paddle.eye(n, sim.shape[1], dtype=sim.dtype)  # the positives: diagonal
        labels = paddle.arange(n, dtype="int64").unsqueeze(-1)
        loss = F.cross_entropy(sim * self.scale, labels)
        if teacher_margin is not None:
            qs, ts, ns = paddle.gather(q, neg_rows), paddle.gather(t[:n], neg_rows), t[n:]
            student = self.scale * ((qs * ts).sum(-1) - (qs * ns).sum(-1))
            loss = loss + self.distill_weight * F.mse_loss(student, teacher_margin.astype(student.dtype))
        return loss


def build(model_name_or_path, params_path=None, pooling="auto", output_emb_size=0, dropout=None):
    """(encoder, tokenizer, backbone config, meta); with params_path the weights come from there.

    dropout sets the backbone's hidden and attention dropout (SimCSE's augmentation)."""
    from core.building import build_model

    drop = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}

    def make(ptm, tokenizer, pooling, saved):
        return SemanticIndexEncoder(
            ptm,
            pooling=pooling,
            output_emb_size=saved.get("output_emb_size", output_emb_size),
            pad_token_id=tokenizer.pad_token_id or 0,
        )

    model, tokenizer, ptm, saved = build_model(
        model_name_or_path, params_path, make, backbone_kwargs=drop, pooling=pooling
    )
    prefixes = ("query: ", "passage: ") if getattr(ptm.config, "pooling_mode", None) == "mean" else ("", "")
    meta = {
        "kind": "encoder",
        "pooling": model.pooling,
        "output_emb_size": model.output_emb_size,
        "query_prefix": saved.get("query_prefix", prefixes[0]),
        "passage_prefix": saved.get("passage_prefix", prefixes[1]),
    }
    return model, tokenizer, ptm.config, meta


def export(model, tokenizer, meta, output_path):
    """Static graph: feeds input_ids, token_type_ids; output the normalised embedding [batch, dim]."""
    import json
    import os

    from core.exporting import export_static

    export_static(model, output_path, output_name="output_embedding")
    tokenizer.save_pretrained(output_path)
    with open(os.path.join(output_path, RANKER), "w") as f:
        json.dump(
            dict(meta, inputs=["input_ids", "token_type_ids"], output="output_embedding [batch, dim]"), f, indent=1
        )
    return output_path
