"""ONNX graph variants the serving benchmark measures before any is shipped (issue: keep a step only if faster).

    fused:       ONNX Runtime's transformer optimizer for BERT (onnxruntime.transformers.optimizer) on our
                 opset-17 export: SkipLayerNormalization, BiasGelu (EmbedLayerNormalization left out, so the
                 embedding table can still be quantized)
    fused-attn:  fused + our fusion of paddle2onnx's multi-head attention subgraphs into com.microsoft
                 Attention (ORT's pattern matcher does not recognise Paddle's layout: scale on q, k
                 transposed twice)
    *-int8:      the same graph, dynamic per-channel int8 (MatMul, Gather, Attention -> QAttention)

ONNX Runtime already applies most of these fusions on line (ORT_ENABLE_ALL) when it loads the plain graph;
the benchmark says whether doing them ahead of time helps.
"""

import os

import numpy as np


def fuse_attention(model, num_heads: int) -> int:
    """Replace each Paddle multi-head attention subgraph by one com.microsoft Attention node (in place).

    Pattern (paddle2onnx of paddle.nn.MultiHeadAttention): q/k/v = Transpose(Reshape(Add(MatMul(x, W), b))),
    q scaled by Mul (+ Add 0), k transposed again, scores + additive mask -> Softmax -> MatMul v ->
    Transpose -> Reshape. The mask comes from Not(Equal(input_ids, pad)); Attention takes it as a 2-d int32
    key mask with the same -10000 fill. Returns the number of fused layers (0 leaves the graph unchanged)."""
    import onnx
    from onnx import helper, numpy_helper
    from onnxruntime.transformers.onnx_model import OnnxModel

    g = model.graph
    prod = {o: n for n in g.node for o in n.output}
    cons = {}
    for n in g.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    init = {i.name: i for i in g.initializer}

    def arr(name):
        return numpy_helper.to_array(init[name]) if name in init else None

    def parent(node, idx, op):
        p = prod.get(node.input[idx]) if node is not None and len(node.input) > idx else None
        return p if p is not None and p.op_type == op else None

    def child(node, op):
        c = [n for n in cons.get(node.output[0], []) if n.op_type == op] if node is not None else []
        return c[0] if len(c) == 1 else None

    def proj(transpose):  # Transpose <- Reshape <- Add(bias) <- MatMul(x, W)
        r = parent(transpose, 0, "Reshape")
        a = parent(r, 0, "Add")
        if a is None:
            return None
        j = 0 if parent(a, 0, "MatMul") else 1
        mm, bias = parent(a, j, "MatMul"), a.input[1 - j]
        if mm is None or arr(mm.input[1]) is None or arr(bias) is None:
            return None
        return mm.input[0], arr(mm.input[1]), arr(bias), [transpose, r, a, mm]

    mask_int, removed, added, fused = None, set(), [], 0
    for sm in [n for n in g.node if n.op_type == "Softmax"]:
        add_mask = parent(sm, 0, "Add")
        qk = parent(add_mask, 0, "MatMul")
        q_add0 = parent(qk, 0, "Add")
        q_mul = parent(q_add0, 0, "Mul")
        q_t = parent(q_mul, 0, "Transpose")
        k_t2 = parent(qk, 1, "Transpose")
        k_t = parent(k_t2, 0, "Transpose")
        ctx = child(sm, "MatMul")
        v_t = parent(ctx, 1, "Transpose")
        out_t = child(ctx, "Transpose")
        out_r = child(out_t, "Reshape")
        if None in (q_t, k_t, v_t, out_r):
            continue
        q, k, v = proj(q_t), proj(k_t), proj(v_t)
        if not (q and k and v) or not (q[0] == k[0] == v[0]):
            continue
        scale, zero = arr(q_mul.input[1]), arr(q_add0.input[1])
        if scale is None or zero is None or scale.size != 1 or np.any(zero != 0):
            continue
        if mask_int is None:
            n = prod.get(add_mask.input[1])
            while n is not None and n.op_type != "Not":
                n = prod.get(n.input[0])
            if n is None:
                return 0
            mask_int = "attention_mask_int32"
            added.append(helper.make_node("Cast", [n.output[0]], [mask_int], to=onnx.TensorProto.INT32))
        wn, bn = f"attention_{fused}_qkv_weight", f"attention_{fused}_qkv_bias"
        w = np.concatenate([q[1], k[1], v[1]], axis=1).astype(np.float32)
        b = np.concatenate([q[2], k[2], v[2]]).astype(np.float32)
        g.initializer.extend([numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)])
        added.append(
            helper.make_node(
                "Attention",
                [q[0], wn, bn, mask_int],
                [out_r.output[0]],
                domain="com.microsoft",
                num_heads=num_heads,
                scale=float(scale.reshape(-1)[0]),
                name=f"Attention_{fused}",
            )
        )
        for n in q[3] + k[3] + v[3] + [q_mul, q_add0, k_t2, qk, add_mask, sm, ctx, out_t, out_r]:
            removed.add(id(n))
        fused += 1
    if not fused:
        return 0
    keep = [n for n in g.node if id(n) not in removed]
    del g.node[:]
    g.node.extend(keep + added)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    m = OnnxModel(model)
    m.topological_sort()
    m.prune_graph()
    return fused


def write_variants(model_dir: str, out_dir: str, num_heads: int, hidden_size: int) -> dict:
    """Writes out_dir/{plain17,fused,fused-attn}[.int8].onnx from model_dir's Paddle graph; returns name -> path."""
    import onnx
    import paddle2onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    from core.inference import constants_to_initializers, model_files

    os.makedirs(out_dir, exist_ok=True)
    graph, params = model_files(model_dir)
    plain = os.path.join(out_dir, "plain17.onnx")
    paddle2onnx.export(graph, params, save_file=plain, opset_version=17, optimize_tool="onnxoptimizer")
    m = onnx.load(plain)
    constants_to_initializers(m)
    onnx.save(m, plain)
    opts = FusionOptions("bert")
    opts.enable_embed_layer_norm = False
    opt = optimizer.optimize_model(
        plain,
        model_type="bert",
        num_heads=num_heads,
        hidden_size=hidden_size,
        optimization_options=opts,
        opt_level=0,
        use_gpu=False,
    )
    paths = {"fused": os.path.join(out_dir, "fused.onnx"), "fused-attn": os.path.join(out_dir, "fused_attn.onnx")}
    opt.save_model_to_file(paths["fused"])
    m = onnx.load(paths["fused"])
    n = fuse_attention(m, num_heads)
    if n == 0:
        raise RuntimeError("no attention subgraph matched")
    onnx.save(m, paths["fused-attn"])
    for name in ("fused", "fused-attn"):
        q = paths[name].replace(".onnx", ".int8.onnx")
        quantize_dynamic(
            paths[name],
            q,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gather", "Attention"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # contrib ops have no shape inference
        )
        paths[name + "-int8"] = q
    return paths
