"""The RAG-stack endpoints: `POST /v1/rerank` (Cohere / Jina / TEI shape) and `POST /v1/embeddings` (OpenAI).

    /v1/rerank      {"query", "documents": [str | {"text"}], "top_n", "return_documents", "model"}
                    -> {"model", "results": [{"index", "relevance_score"[, "document"]}]}
    /v1/embeddings  {"input": str | [str], "model", "input_type": "query" | "passage", "encoding_format": "float"}
                    -> {"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "usage"}

`model` picks a served model by name; a name that is not served (OpenAI clients send their own)
falls back to the first model of the right kind. Errors: {"error": message, "error_type": kind}.
"""

import numpy as np

from core.errors import DataError, NotFound, PipelineError
from deploy.protocols import wire
from deploy.service import Ctx


def error_body(err: PipelineError) -> dict:
    return {"error": str(err), "error_type": err.kind}


class V1Protocol:
    def __init__(self, services, limits):
        self.services = services  # name -> ModelService
        self.limits = limits

    def _model(self, obj, kind):
        name = wire.str_field(obj, "model")
        svc = self.services.get(name) if name is not None else None
        if svc is None:
            svc = next((s for s in self.services.values() if s.kind == kind), None)
            if svc is None:
                raise NotFound(f"no {kind} model is served (serving: {', '.join(self.services)})")
        return svc

    def rerank(self, body: bytes, ctx: Ctx) -> dict:
        obj = wire.json_object(wire.parse_json(body))
        svc = self._model(obj, "ranker")
        query = self.limits.text(obj.get("query"), "query")
        docs = obj.get("documents")
        if not isinstance(docs, list) or not docs:
            raise DataError(f"'documents' must be a non-empty list, got {wire.type_name(docs)}")
        self.limits.rows(len(docs), "documents")
        texts = []
        for i, d in enumerate(docs):
            text = d.get("text") if isinstance(d, dict) else d
            texts.append(self.limits.text(text, f"documents[{i}]"))
        top_n = min(wire.int_field(obj, "top_n", len(texts), 1), len(texts))
        return_docs = wire.bool_field(obj, "return_documents")
        scores = svc.score([(query, t) for t in texts], ctx, what="documents")
        results = []
        for i in np.argsort(-scores, kind="mergesort")[:top_n]:
            r = {"index": int(i), "relevance_score": float(scores[i])}
            if return_docs:
                r["document"] = {"text": texts[i]}
            results.append(r)
        return {"model": svc.name, "results": results}

    def embeddings(self, body: bytes, ctx: Ctx) -> dict:
        obj = wire.json_object(wire.parse_json(body))
        svc = self._model(obj, "encoder")
        texts = obj.get("input")
        if isinstance(texts, str):
            texts = [texts]
        texts = wire.string_list(texts, "input", self.limits)
        wire.str_field(obj, "encoding_format", "float", choices=("float",))
        input_type = wire.str_field(obj, "input_type", "query", choices=("query", "passage"))
        emb, tokens = svc.embed(texts, ctx, input_type)
        return {
            "object": "list",
            "model": svc.name,
            "data": [
                {"object": "embedding", "index": i, "embedding": [float(x) for x in v]} for i, v in enumerate(emb)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
