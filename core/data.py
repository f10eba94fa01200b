"""Readers for the neural_search TSV files, featurizing, dynamic padding and batching.

Every reader checks each line and stops at the first problem with an error that names the
file, the line number and what is wrong. A first line that equals the column names is
treated as a header (PaddleNLP's sort/rank files have one, its recall files do not).
"""

import os
import warnings
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Executor

import numpy as np

from .errors import DataError

# PaddleNLP's tokenizer warns on every truncated pair that it drops the overflow, which we intend
warnings.filterwarnings("ignore", message="Be aware, overflowing tokens are not returned")

PAIRWISE_TRAIN = ("query", "title", "neg_title")
PAIRWISE_LABELS = ("label", "neg_label")  # optional graded labels of title and neg_title
LABELED_PAIRS = ("query", "title", "label")
PAIRS = ("query", "title")


def _lines(path):
    """Yield (line_number, text) of a UTF-8 file, with errors naming the file and line."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found")
    with open(path, "rb") as f:
        empty = True
        for lineno, raw in enumerate(f, start=1):
            empty = False
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield lineno, line.rstrip("\r\n")
    if empty:
        raise DataError(f"{path}: file is empty")


def read_tsv(
    path: str,
    columns: Sequence[str],
    optional: int = 0,
    label_column: str | Sequence[str] | None = None,
    label_values: Collection[int] | None = None,
    float_columns: Sequence[str] = (),
    check_row: Callable[[dict], str | None] | None = None,
) -> list[dict]:
    """Read a tab-separated file whose rows have `columns` (the last `optional` may be absent).

    Text columns must be non-empty; `label_column` (a name or a tuple of names) must hold an
    integer in `label_values`; `float_columns` must parse as numbers. `check_row(row)` may
    return a message for a row that is wrong as a whole. Returns a list of dicts.
    """
    label_columns = (label_column,) if isinstance(label_column, str) else tuple(label_column or ())
    rows = []
    min_cols = len(columns) - optional
    names = ", ".join(columns)
    for lineno, line in _lines(path):
        if not line.strip():
            continue  # blank lines (e.g. a trailing one) carry nothing
        cells = line.split("\t")
        if lineno == 1 and tuple(c.strip() for c in cells[:min_cols]) == tuple(columns[:min_cols]):
            continue  # a header row
        if not min_cols <= len(cells) <= len(columns):
            want = str(len(columns)) if not optional else f"{min_cols} to {len(columns)}"
            raise DataError(f"{path}:{lineno}: expected {want} tab-separated columns ({names}), got {len(cells)}")
        row = {}
        for name, cell in zip(columns, cells):
            value = cell.strip()
            if name in label_columns:
                try:
                    value = int(value)
                except ValueError:
                    raise DataError(f"{path}:{lineno}: column '{name}' must be an integer, got {cell!r}") from None
                if label_values is not None and value not in label_values:
                    allowed = ", ".join(str(v) for v in sorted(label_values))
                    raise DataError(f"{path}:{lineno}: column '{name}' is {value}, allowed values are {allowed}")
            elif name in float_columns:
                try:
                    value = float(value)
                except ValueError:
                    raise DataError(f"{path}:{lineno}: column '{name}' must be a number, got {cell!r}") from None
            elif not value:
                raise DataError(f"{path}:{lineno}: column '{name}' is empty")
            row[name] = value
        problem = check_row(row) if check_row else None
        if problem:
            raise DataError(f"{path}:{lineno}: {problem}")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no data rows")
    return rows


def read_pairwise_train(path: str) -> list[dict]:
    """query, title (more relevant), neg_title (less relevant), and optionally the graded labels
    of both (label, neg_label: integers, label > neg_label). The labels are all there or none."""

    def check(row):
        has = [name in row for name in PAIRWISE_LABELS]
        if any(has) and not all(has):
            return "give both label and neg_label or neither"
        if all(has) and row["label"] <= row["neg_label"]:
            return f"label {row['label']} must be greater than neg_label {row['neg_label']}"
        return None

    rows = read_tsv(path, PAIRWISE_TRAIN + PAIRWISE_LABELS, optional=2, label_column=PAIRWISE_LABELS, check_row=check)
    if len({"label" in r for r in rows}) > 1:
        raise DataError(f"{path}: some rows have graded labels and some do not; give them on every row or none")
    return rows


def read_labeled_pairs(path: str, label_values: Collection[int] = (0, 1)) -> list[dict]:
    """query, title, label with label in label_values (0/1 for AUC)."""
    return read_tsv(path, LABELED_PAIRS, label_column="label", label_values=set(label_values))


def ranking_groups(rows: Sequence[dict], size: int, seed: int = 0) -> list[dict]:
    """Listwise training groups (localized contrastive estimation, with grades): for every (query, title)
    of grade >= 1 (a pair listed twice counts once, at its higher grade), a group of `size` titles of the
    query, that title first, then `size - 1` titles of the same query with a lower grade (judged lower,
    or mined as 0), drawn at random (with repeats when the query has fewer). A title with no lower-graded
    title of its query makes no group.
    rows: {"query", "title", "label"} -> [{"query", "titles": [(title, grade), ...]}]."""
    if size < 2:
        raise ValueError(f"ranking_groups: a group needs at least 2 titles, got {size}")
    by_query = {}
    for r in rows:
        titles = by_query.setdefault(r["query"], {})
        titles[r["title"]] = max(r["label"], titles.get(r["title"], 0))
    rng = np.random.RandomState(seed)
    groups = []
    for query, titles in by_query.items():
        for title, grade in titles.items():
            lower = [(t, g) for t, g in titles.items() if g < grade]
            if grade < 1 or not lower:
                continue
            pick = rng.choice(len(lower), size - 1, replace=len(lower) < size - 1)
            groups.append({"query": query, "titles": [(title, grade)] + [lower[i] for i in pick]})
    return groups


def read_pairs(path: str) -> list[dict]:
    """query, title and an optional third column (a recall score or a label) that is kept as text."""
    rows = read_tsv(path, ("query", "title", "extra"), optional=1)
    for r in rows:
        r.pop("extra", None)
    return rows


def read_corpus(path: str, max_bytes: int | None = None) -> list[str]:
    """One text per line (PaddleNLP recall/corpus.csv). Blank lines are skipped; a line with a tab, or
    longer than `max_bytes` in UTF-8, is an error naming the file and line."""

    def check(row):
        n = len(row["text"].encode("utf-8"))
        if max_bytes is not None and n > max_bytes:
            return f"the text is {n} bytes in UTF-8; the index holds at most {max_bytes}"
        return None

    return [r["text"] for r in read_tsv(path, ("text",), check_row=check)]


def check_text(text: object, what: str = "text") -> str:
    """Reject non-string, empty or whitespace-only texts with a message naming `what`."""
    if not isinstance(text, str):
        raise DataError(f"{what} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise DataError(f"{what} is empty")
    return text


class PairEncoder:
    """Turns (query, title) into (input_ids, token_type_ids) with the model's tokenizer.

    Tokenizers with a fast path (`encode_pair_fast`, e.g. the e5 tokenizer on the Rust
    `tokenizers` library) use it; it gives the same ids as the PaddleNLP call.
    """

    def __init__(self, tokenizer, max_seq_length=128):
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.fast = getattr(tokenizer, "encode_pair_fast", None)

    def __call__(self, query, title):
        return self.many([(query, title)])[0]

    def many(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        for q, t in pairs:
            check_text(q, "query")
            check_text(t, "title")
        if self.fast is not None:
            return self.fast(pairs, self.max_seq_length)
        out = []
        for q, t in pairs:
            enc = self.tokenizer(text=q, text_pair=t, max_length=self.max_seq_length, truncation=True)
            out.append((enc["input_ids"], enc["token_type_ids"]))
        return out


class TextEncoder:
    """Turns single texts (with an optional prefix, e.g. e5's "query: ") into (input_ids, token_type_ids)."""

    def __init__(self, tokenizer, max_seq_length=128, prefix=""):
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.prefix = prefix
        self.fast = getattr(tokenizer, "encode_single_fast", None)

    def many(self, texts: Sequence[str], what: str = "text") -> list[tuple[list[int], list[int]]]:
        for i, t in enumerate(texts):
            check_text(t, f"{what}[{i}]" if len(texts) > 1 else what)
        texts = [self.prefix + t for t in texts]
        if self.fast is not None:
            return self.fast(texts, self.max_seq_length)
        out = []
        for t in texts:
            enc = self.tokenizer(text=t, max_length=self.max_seq_length, truncation=True)
            out.append((enc["input_ids"], enc["token_type_ids"]))
        return out


def pad(seqs: Sequence[Sequence[int]], pad_value: int = 0, dtype: str = "int64") -> np.ndarray:
    """Pad a list of sequences to the longest one (dynamic padding)."""
    width = max(len(s) for s in seqs)
    out = np.full((len(seqs), width), pad_value, dtype=dtype)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


# what one more engine run costs, in padded tokens: a run has a fixed price (kernel launches, small
# matrix shapes) on top of its tokens. Measured for ONNX Runtime; Paddle Inference re-plans per input
# shape, so its engines keep one run per batch_size rows (overhead None).
RUN_OVERHEAD_TOKENS = 32


def _batch_costs(sorted_lengths, batch_size, overhead_tokens, suffix=False):
    """Least cost (padded tokens + overhead_tokens per batch) of running the first i rows (or, with
    suffix, the rows from i on) in batches of at most batch_size, for every i, and where the last (first)
    batch starts (ends)."""
    n, inf = len(sorted_lengths), float("inf")
    best, cut = [inf] * (n + 1), [0] * (n + 1)
    if suffix:
        best[n] = 0.0
        for i in range(n - 1, -1, -1):
            for j in range(i + 1, min(n, i + batch_size) + 1):
                cost = best[j] + (j - i) * sorted_lengths[j - 1] + overhead_tokens
                if cost < best[i]:
                    best[i], cut[i] = cost, j
    else:
        best[0] = 0.0
        for i in range(1, n + 1):
            longest = sorted_lengths[i - 1]
            for j in range(max(0, i - batch_size), i):
                cost = best[j] + (i - j) * longest + overhead_tokens
                if cost < best[i]:
                    best[i], cut[i] = cost, j
    return best, cut


def padding_aware_batches(
    sorted_lengths: Sequence[int], batch_size: int, overhead_tokens: int | None = RUN_OVERHEAD_TOKENS
) -> list[tuple[int, int]]:
    """Split rows sorted by length into batches of at most `batch_size` that minimise the padded tokens
    computed (rows x longest row, summed) plus `overhead_tokens` per batch: a request of 20 pairs of
    15 to 60 tokens then runs as two or three batches instead of one padded to 60 (about 1.3x fewer
    tokens on KUAKE-QTR). overhead_tokens None: plain chunks of batch_size. Returns [start, end) ranges."""
    n = len(sorted_lengths)
    if overhead_tokens is None:
        return [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    return _trace(_batch_costs(sorted_lengths, batch_size, overhead_tokens)[1], 0, n)


def _trace(cut, start, end, suffix=False):
    """The batches of rows [start, end) from _batch_costs' cuts (prefix cuts end at `end`, suffix cuts
    start at `start`)."""
    ranges = []
    if suffix:
        while start < end:
            ranges.append((start, cut[start]))
            start = cut[start]
        return ranges
    while end > start:
        ranges.append((cut[end], end))
        end = cut[end]
    return ranges[::-1]


def split_between_workers(
    sorted_lengths: Sequence[int], batch_size: int, overhead_tokens: int | None, workers: int
) -> list[list[tuple[int, int]]]:
    """The rows (sorted by length) cut into at most `workers` contiguous groups, each run as its own
    padding-aware batches, so that the costliest group costs least: one request then keeps every engine
    replica busy for about the same time. Two groups are cut where the shorter rows' batches and the
    longer rows' batches cost most nearly the same (more workers: the same cut, recursively, in
    proportion). Returns each group's [start, end) batch ranges over the sorted rows."""
    n = len(sorted_lengths)
    if workers <= 1 or n <= 1:
        return [padding_aware_batches(sorted_lengths, batch_size, overhead_tokens)] if n else []
    overhead = overhead_tokens or 0
    head, head_cut = _batch_costs(sorted_lengths, batch_size, overhead)
    tail, tail_cut = _batch_costs(sorted_lengths, batch_size, overhead, suffix=True)
    k = workers // 2
    c = min(range(1, n), key=lambda c: max(head[c] / k, tail[c] / (workers - k)))
    traced = overhead_tokens is not None  # a one-worker side's batches are in these two DPs already
    if traced and k == 1:
        left = [_trace(head_cut, 0, c)]
    else:
        left = split_between_workers(sorted_lengths[:c], batch_size, overhead_tokens, k)
    if traced and workers - k == 1:
        return left + [_trace(tail_cut, c, n, suffix=True)]
    right = split_between_workers(sorted_lengths[c:], batch_size, overhead_tokens, workers - k)
    return left + [[(a + c, b + c) for a, b in group] for group in right]


def run_by_length(
    rows: Sequence,
    batch_size: int,
    run_batch: Callable[[list], np.ndarray],
    length: Callable = len,
    overhead_tokens: int | None = None,
    pool: Executor | None = None,
    workers: int = 1,
) -> np.ndarray:
    """Inference over `rows` in batches of similar length (little padding): `run_batch(list of rows)`
    gives one output row per input row; the outputs come back in the input order as a float32 array
    (None when there are no rows). With overhead_tokens, batches follow padding_aware_batches. With a
    `pool` of `workers` threads, the rows are cut into one group per worker (split_between_workers) and
    the groups run side by side, each its own batches in turn."""
    lengths = [length(r) for r in rows]
    order = np.argsort(lengths, kind="mergesort")
    sorted_lengths = [lengths[i] for i in order]

    def run_group(ranges):
        return [(order[a:b], np.asarray(run_batch([rows[j] for j in order[a:b]]))) for a, b in ranges]

    if pool is not None and workers > 1:
        groups = split_between_workers(sorted_lengths, batch_size, overhead_tokens, workers)
        results = [r for done in pool.map(run_group, groups) for r in done]
    else:
        results = run_group(padding_aware_batches(sorted_lengths, batch_size, overhead_tokens))
    out = None
    for idx, res in results:
        if out is None:
            out = np.zeros((len(rows),) + res.shape[1:], dtype=np.float32)
        out[idx] = res
    return out


class EncodedDataset:
    """A list of examples featurized lazily (and cached) by `fn`."""

    def __init__(self, examples, fn):
        self.examples = examples
        self.fn = fn
        self._cache = {}

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        if i not in self._cache:
            self._cache[i] = self.fn(self.examples[i])
        return self._cache[i]


def batch_indices(
    n: int, batch_size: int, shuffle: bool = False, seed: int = 0, epoch: int = 0, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """Index batches for one epoch; with world_size > 1 each rank gets the same number of batches.

    The order depends only on (seed, epoch), so a resumed run sees the same batches.
    """
    order = np.arange(n)
    if shuffle:
        order = np.random.RandomState(seed + epoch).permutation(n)
    if world_size > 1:
        per_rank = -(-n // world_size)
        order = np.resize(order, per_rank * world_size)  # repeat the head to even out ranks
        order = order[rank::world_size]
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def num_batches(n: int, batch_size: int, world_size: int = 1) -> int:
    per_rank = -(-n // world_size)
    return -(-per_rank // batch_size)


def collate_pairs(items: Sequence, pad_id: int = 0, pad_type_id: int = 0) -> list[np.ndarray]:
    """items: [(input_ids, token_type_ids, *rest)] -> padded arrays (+ stacked rest)."""
    out = [pad([it[0] for it in items], pad_id), pad([it[1] for it in items], pad_type_id)]
    for j in range(2, len(items[0])):
        out.append(np.asarray([it[j] for it in items]))
    return out
