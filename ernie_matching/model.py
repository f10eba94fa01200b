"""Pairwise matching: score = sigmoid(Linear(dropout(pooled))), margin ranking loss.

Without labels, each (query, title, neg_title) row gives one pair: title above neg_title
(PaddleNLP's loss). With graded labels, every two (query, title) rows of the batch whose
labels differ give a pair, across queries too: the labels are absolute grades, so this also
teaches scores that compare between queries (what a global AUC or a score threshold needs).
"""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from core.backbone import hidden_size
from core.pooling import concat_padded, encode


class PairwiseMatching(nn.Layer):
    def __init__(self, pretrained_model, dropout=None, margin=0.1, pooling="cls", pad_token_id=0):
        super().__init__()
        self.ptm = pretrained_model
        self.dropout = nn.Dropout(dropout if dropout is not None else 0.1)
        self.margin = margin
        self.pooling = pooling
        self.pad_token_id = pad_token_id
        self.similarity = nn.Linear(hidden_size(self.ptm), 1)

    def logit(self, input_ids, token_type_ids=None):
        pooled = encode(self.ptm, input_ids, token_type_ids, self.pooling, self.pad_token_id)
        return self.similarity(self.dropout(pooled)).squeeze(-1)

    def predict(self, input_ids, token_type_ids=None):
        """Relevance probability of each (query, title) row, shape [batch]."""
        return F.sigmoid(self.logit(input_ids, token_type_ids))

    def forward(
        self,
        pos_input_ids,
        neg_input_ids,
        pos_token_type_ids=None,
        neg_token_type_ids=None,
        pos_labels=None,
        neg_labels=None,
    ):
        # one backbone pass over [pos; neg] (padded to a common length; padding is masked out)
        # costs less than two passes of half the batch
        if pos_token_type_ids is None:
            pos_token_type_ids = paddle.zeros_like(pos_input_ids)
        if neg_token_type_ids is None:
            neg_token_type_ids = paddle.zeros_like(neg_input_ids)
        ids = concat_padded(pos_input_ids, neg_input_ids, self.pad_token_id)
        types = concat_padded(pos_token_type_ids, neg_token_type_ids, 0)
        probs = self.predict(ids, types)
        half = pos_input_ids.shape[0]
        pos, neg = probs[:half], probs[half:]
        if pos_labels is None:
            return F.margin_ranking_loss(pos, neg, paddle.ones_like(pos), margin=self.margin)
        # in-batch graded pairs: row a above row b wherever label_a > label_b
        grades = paddle.concat([pos_labels, neg_labels]).astype(probs.dtype)
        above = (grades.unsqueeze(1) > grades.unsqueeze(0)).astype(probs.dtype)
        hinge = F.relu(self.margin - (probs.unsqueeze(1) - probs.unsqueeze(0)))
        return (hinge * above).sum() / above.sum()
