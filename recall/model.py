"""Dual-encoder side of the search system: one text -> one L2-normalised embedding."""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from core.backbone import hidden_size
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


def build(model_name_or_path, params_path=None, pooling="auto", output_emb_size=0):
    """(encoder, tokenizer, backbone config, meta); with params_path the weights come from there."""
    from core import backbone, checkpoint
    from core.ranker import backbone_source

    src = backbone_source(params_path, model_name_or_path)
    tokenizer = backbone.load_tokenizer(src)
    meta = checkpoint.read_meta(params_path) if params_path else {}
    ptm = backbone.init_backbone(src) if params_path else backbone.load_backbone(src)
    pooling = meta.get("pooling") or backbone.pooling_mode(ptm, pooling)
    output_emb_size = meta.get("output_emb_size", output_emb_size)
    model = SemanticIndexEncoder(ptm, pooling=pooling, output_emb_size=output_emb_size,
                                 pad_token_id=tokenizer.pad_token_id or 0)
    if params_path:
        checkpoint.load_params(model, params_path)
    prefixes = ("query: ", "passage: ") if getattr(ptm.config, "pooling_mode", None) == "mean" else ("", "")
    meta = {"kind": "encoder", "pooling": pooling, "output_emb_size": output_emb_size,
            "query_prefix": meta.get("query_prefix", prefixes[0]), "passage_prefix": meta.get("passage_prefix", prefixes[1])}
    return model, tokenizer, ptm.config, meta


def export(model, tokenizer, meta, output_path):
    """Static graph: feeds input_ids, token_type_ids; output the normalised embedding [batch, dim]."""
    import json
    import os

    spec = [paddle.static.InputSpec(shape=[None, None], dtype="int64", name=n) for n in ("input_ids", "token_type_ids")]
    model.eval()
    static = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
    os.makedirs(output_path, exist_ok=True)
    paddle.jit.save(static, os.path.join(output_path, "inference"))
    tokenizer.save_pretrained(output_path)
    with open(os.path.join(output_path, "ranker.json"), "w") as f:
        json.dump(dict(meta, inputs=["input_ids", "token_type_ids"], output="output_embedding [batch, dim]"), f, indent=1)
    return output_path
