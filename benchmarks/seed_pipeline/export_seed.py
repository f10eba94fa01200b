"""Export a cross-encoder checkpoint the way the seed's users did, for the seed's Pipeline server.

Runs on the Paddle Serving 0.9 Python 3.9 environment (paddle 2.6.2, paddlenlp 2.7.2; built by
../shared/tools/paddle-serving-py39/setup.sh with WITH_PADDLE=1), not on the project's Python:

    python3.9-serving benchmarks/seed_pipeline/export_seed.py CHECKPOINT_DIR OUT_DIR

CHECKPOINT_DIR is one of our cross-encoder checkpoints with CLS pooling (config.json +
model_state.pdparams). The weights go into paddlenlp 2.7.2's BertForSequenceClassification (the
classifier the seed's cross_encoder uses), dynamic-to-static export as in the seed's export_model.py,
and the Paddle Serving configs (feed input_ids / token_type_ids, fetch `predict`) are written with the
serving client's own protobuf (its converter imports paddle.fluid, which paddle 2.6 no longer has).
"""

import json
import os
import sys

import paddle
from paddlenlp.transformers import BertConfig, BertForSequenceClassification


def main(ckpt, out):
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    meta = json.load(open(os.path.join(ckpt, "ranker.json")))
    if meta.get("pooling") != "cls":
        raise SystemExit(f"{ckpt}: pooling {meta.get('pooling')!r}; the seed's classifier reads the CLS pooler only")
    keep = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "hidden_act",
        "max_position_embeddings",
        "type_vocab_size",
        "layer_norm_eps",
        "pad_token_id",
    )
    config = BertConfig(**{k: cfg[k] for k in keep if k in cfg}, num_labels=2)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    model = BertForSequenceClassification(config)
    state = paddle.load(os.path.join(ckpt, "model_state.pdparams"))
    state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    missing, unexpected = model.set_state_dict(state)
    if missing or unexpected:
        raise SystemExit(f"weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.eval()
    spec = [paddle.static.InputSpec([None, None], "int64", name=n) for n in ("input_ids", "token_type_ids")]
    static = paddle.jit.to_static(model, input_spec=spec)
    os.makedirs(out, exist_ok=True)
    paddle.jit.save(static, os.path.join(out, "inference"))

    import google.protobuf.text_format as tf
    from paddle_serving_client.proto import general_model_config_pb2 as m_config

    fetch_name = "predict"  # LocalPredictor falls back to the graph's outputs in order when names differ
    conf = m_config.GeneralModelConfig()
    for name in ("input_ids", "token_type_ids"):
        fv = conf.feed_var.add()
        fv.name, fv.alias_name, fv.is_lod_tensor, fv.feed_type = name, name, False, 0
        fv.shape.extend([-1])
    tv = conf.fetch_var.add()
    tv.name, tv.alias_name, tv.is_lod_tensor, tv.fetch_type = fetch_name, "predict", False, 1
    tv.shape.extend([2])
    with open(os.path.join(out, "serving_server_conf.prototxt"), "w") as f:
        f.write(tf.MessageToString(conf))
    with open(os.path.join(out, "serving_server_conf.stream.prototxt"), "wb") as f:
        f.write(conf.SerializeToString())
    open(os.path.join(out, "fluid_time_file"), "w").close()
    print("exported", out, sorted(os.listdir(out)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
