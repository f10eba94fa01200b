"""Building the cross-encoder for training or from a checkpoint (thin over core)."""

from core.building import build_model

from .model import CrossEncoder

KIND = "cross_encoder"


def build(model_name_or_path, params_path=None, dropout=None, pooling="auto"):
    """Returns (model, tokenizer, backbone_config, meta). With params_path the weights come from there.

    The classifier is PaddleNLP's *ForSequenceClassification (2 classes), so pretrained
    cross-encoders such as rocketqa-base-cross-encoder load with their trained head.
    """
    from paddlenlp.transformers import AutoModelForSequenceClassification as Cls

    extra = {"num_labels": 2} if dropout is None else {"num_labels": 2, "classifier_dropout": dropout}

    def make(net, tokenizer, pooling, saved):
        return CrossEncoder(net, pad_token_id=tokenizer.pad_token_id or 0, pooling=pooling)

    model, tokenizer, net, _ = build_model(model_name_or_path, params_path, make, Cls, extra, pooling)
    return model, tokenizer, net.config, {"kind": KIND, "pooling": model.pooling}
