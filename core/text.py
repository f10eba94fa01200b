"""Small text utilities shared by data preparation, baselines and readers."""


def char_jaccard(a: str, b: str) -> float:
    """Jaccard similarity of the character sets of two strings (whitespace ignored)."""
    sa = {c for c in a if not c.isspace()}
    sb = {c for c in b if not c.isspace()}
    if not sa and not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def clean_field(text: str) -> str:
    """Collapse tabs and newlines so a text can live in one TSV cell."""
    return " ".join(text.replace("\t", " ").replace("\r", " ").replace("\n", " ").split())
