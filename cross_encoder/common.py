"""Building the cross-encoder for training or from a checkpoint (thin over core)."""

from core import backbone, checkpoint
from core.ranker import backbone_source

from .model import CrossEncoder

KIND = "cross_encoder"


def build(model_name_or_path, params_path=None, dropout=None, pooling="auto"):
    """Returns (model, tokenizer, backbone_config, meta). With params_path the weights come from there.

    The classifier is PaddleNLP's *ForSequenceClassification (2 classes), so pretrained
    cross-encoders such as rocketqa-base-cross-encoder load with their trained head.
    """
    from paddlenlp.transformers import AutoModelForSequenceClassification as Cls

    src = backbone_source(params_path, model_name_or_path)
    tokenizer = backbone.load_tokenizer(src)
    extra = {} if dropout is None else {"classifier_dropout": dropout}
    if params_path:
        net = backbone.init_backbone(src, cls=Cls, num_labels=2, **extra)
    else:
        net = backbone.load_backbone(src, cls=Cls, num_labels=2, **extra)
    meta = checkpoint.read_meta(params_path) if params_path else {}
    pooling = meta.get("pooling") or backbone.pooling_mode(net, pooling)
    model = CrossEncoder(net, pad_token_id=tokenizer.pad_token_id or 0, pooling=pooling)
    if params_path:
        checkpoint.load_params(model, params_path)
    return model, tokenizer, net.config, {"kind": KIND, "pooling": pooling}
