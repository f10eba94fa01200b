"""The seed's cross-encoder Pipeline server (PaddleNLP neural_search ranking/*/deploy/python/web_service.py
flow on Paddle Serving 0.9), for the side-by-side serving benchmark. Runs on the Python 3.9 environment:

    python3.9-serving web_service.py MODEL_DIR TOKENIZER_JSON RPC_PORT HTTP_PORT THREADS

Request, as the seed's clients send it: {"key": ["0", "1", ...], "value": ["{'query': q, 'title': t}", ...]}
to POST /ernie/prediction (or PipelineClient). Each value is one pair; the Op tokenizes and pads them,
Paddle Inference (local_predictor) runs them as one batch, and the reply is a string of the scores, as
in the seed. The score is softmax(logits)[:, 1], our probability, where the seed returned
expit(logits)[:, 1] (the same cost; this way its scores can be compared with ours). The seed tokenized
with PaddleNLP's Python tokenizer for its ERNIE vocabulary; this model's vocabulary
(multilingual-e5-small) is read from a Hugging Face tokenizer.json instead. The seed parsed each value
with json.loads after replacing quotes; so does this.
"""

import json
import sys

import numpy as np
from paddle_serving_server.web_service import Op, WebService

MAX_SEQ_LEN = 64


class ErnieOp(Op):
    def init_op(self):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(sys.argv[2])
        self.tokenizer.enable_truncation(MAX_SEQ_LEN)
        self.pad_id = self.tokenizer.token_to_id("<pad>")

    def preprocess(self, input_dicts, data_id, log_id):
        ((_, input_dict),) = input_dicts.items()
        pairs = []
        for i in range(len(input_dict.keys())):
            example = json.loads(input_dict[str(i)].replace("'", '"'))
            pairs.append((example["query"], example["title"]))
        encs = self.tokenizer.encode_batch(pairs)
        width = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), width), self.pad_id, dtype="int64")
        for r, e in enumerate(encs):
            ids[r, : len(e.ids)] = e.ids
        return {"input_ids": ids, "token_type_ids": np.zeros_like(ids)}, False, None, ""

    def postprocess(self, input_dicts, fetch_dict, data_id, log_id):
        (logits,) = fetch_dict.values()
        # the seed returns expit(logits)[:, 1]; softmax(logits)[:, 1] (same cost) is our probability, to compare scores
        probs = np.exp(logits - logits.max(1, keepdims=True))
        return {"predict": str((probs[:, 1] / probs.sum(1)).tolist())}, None, ""


class ErnieService(WebService):
    def get_pipeline_response(self, read_op):
        return ErnieOp(name="ernie", input_ops=[read_op])


if __name__ == "__main__":
    model_dir, _, rpc_port, http_port, threads = sys.argv[1:6]
    conf = {
        "worker_num": 20,  # the seed's config_nlp.yml
        "build_dag_each_worker": False,
        "rpc_port": int(rpc_port),
        "http_port": int(http_port),
        "dag": {"is_thread_op": False, "tracer": {"interval_s": -1}},
        "op": {
            "ernie": {
                "concurrency": 1,
                "local_service_conf": {
                    "client_type": "local_predictor",
                    "ir_optim": True,
                    "device_type": 0,
                    "devices": "",
                    "thread_num": int(threads),
                    "fetch_list": ["predict"],
                    "model_config": model_dir,
                },
            }
        },
    }
    svc = ErnieService(name="ernie")
    svc.prepare_pipeline_config(yml_dict=conf)
    svc.run_service()
