"""RocketQA-style cross-encoder: a 2-class sequence classifier over (query, title)."""

import paddle.nn as nn
import paddle.nn.functional as F

from core.pooling import encode


class CrossEncoder(nn.Layer):
    """Wraps a PaddleNLP *ForSequenceClassification model (num_labels=2).

    pooling 'cls' runs it as it is (its pooler, dropout, classifier: pretrained cross-encoders
    such as rocketqa-base-cross-encoder keep their trained head); 'mean' feeds the masked mean of
    the token states to the same dropout and classifier (the right input for e5-style backbones).
    """

    def __init__(self, classifier, pad_token_id=0, pooling="cls"):
        super().__init__()
        self.model = classifier
        self.pad_token_id = pad_token_id
        self.pooling = pooling

    def forward(self, input_ids, token_type_ids=None):
        """Logits over (not relevant, relevant), shape [batch, 2]."""
        if self.pooling == "mean":
            base = getattr(self.model, self.model.base_model_prefix)
            pooled = encode(base, input_ids, token_type_ids, "mean", self.pad_token_id)
            return self.model.classifier(self.model.dropout(pooled))
        mask = (input_ids != self.pad_token_id).astype("float32")
        attention_mask = ((1.0 - mask) * -1e4).unsqueeze([1, 2])
        out = self.model(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        return out if not isinstance(out, (tuple, list)) else out[0]

    def predict(self, input_ids, token_type_ids=None):
        """Relevance probability (softmax over the two classes), shape [batch]."""
        return F.softmax(self.forward(input_ids, token_type_ids), axis=-1)[:, 1]
