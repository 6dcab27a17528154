"""Text-rendering accuracy: what text a prompt asks for, and how close a reading of it came.

Pure functions, no heavy imports (``rapidfuzz`` is imported inside :func:`text_accuracy`):

- :func:`quoted_text` pulls the quoted part of a prompt (``sign reading "CLOSED FOR REPAIRS"``
  → ``CLOSED FOR REPAIRS``), for suites that say their prompts' quotes are the text to render.
- :func:`expected_text` picks a prompt's expected text: the declared one, else the quoted one
  when asked, else none (the prompt is not scored for text).
- :func:`normalize_text` applies the comparison rules below to one string.
- :func:`text_accuracy` is ``1 - normalised edit distance`` between a reading and the
  expected text, in [0, 1], 1 for a perfect rendering.

Comparison rules (both strings get the same treatment, see ``docs/metrics.md``):

1. Unicode NFKC normalisation: full-width Latin letters and digits, ligatures and
   compatibility forms become their plain equivalents (``ＣＬＯＳＥＤ`` → ``CLOSED``).
2. Case is ignored (``str.casefold``): an OCR model's case errors on signs are noise, and
   diffusion models often render a prompt's text in capitals.
3. Whitespace: every run of whitespace (spaces, tabs, line breaks between read lines) counts
   as one space; leading and trailing whitespace is dropped; whitespace next to a CJK
   character is dropped (CJK text has no word spaces, and OCR splits lines anywhere).
4. Punctuation is kept: a missing ``!`` is a rendering error like a missing letter.
5. The edit distance is Levenshtein over Unicode code points, so each CJK character is one
   symbol (a wrong character costs exactly one edit), and normalised by the longer string's
   length. Text the OCR read that was not asked for (a second sign) counts as insertions.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "expected_text",
    "is_cjk",
    "normalize_text",
    "quoted_text",
    "text_accuracy",
]

_INSTALL_HINT = "pip install 'pytest-zimage-quality[ocr]'"

# Letters and digits of the scripts that write words with spaces: a straight quote touching
# one of these is an apostrophe or an inch mark ("dog's", 12"), not a quotation mark.
_WORDISH = r"0-9A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF"
_QUOTES = re.compile(
    "|".join(
        (
            rf'(?<![{_WORDISH}])"([^"\n]*)"(?![{_WORDISH}])',
            rf"(?<![{_WORDISH}])'([^'\n]*)'(?![{_WORDISH}])",
            r"“([^”\n]*)”",
            r"‘([^’\n]*)’",
            r"「([^」\n]*)」",
            r"『([^』\n]*)』",
        )
    )
)

# Unified ideographs (with extensions A and compatibility), kana, Hangul, CJK symbols and
# punctuation, and the full-width forms: the characters written without word spaces.
_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3100, 0x31FF),  # bopomofo, kanbun, katakana extension
    (0x3400, 0x4DBF),  # extension A
    (0x4E00, 0x9FFF),  # unified ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0xFF00, 0xFFEF),  # half-width and full-width forms
    (0x20000, 0x3134F),  # extensions B-G
)
_SPACES = re.compile(r"\s+")


def quoted_text(prompt: str) -> str | None:
    """The text between quotation marks in ``prompt``, or ``None`` when there is none.

    Recognises ``"…"``, ``'…'``, ``“…”``, ``‘…’``, ``「…」`` and ``『…』``. Several quoted
    parts are joined with one space, in prompt order. A straight quote that touches a Latin,
    Greek or Cyrillic letter or a digit on its outer side is taken for an apostrophe or an
    inch mark (``a dog's bowl``, ``a 12" record``) and opens nothing. Quotes do not span
    lines. Empty or all-blank quotes are ignored.
    """
    parts = []
    for match in _QUOTES.finditer(prompt):
        inner = next(g for g in match.groups() if g is not None).strip()
        if inner:
            parts.append(inner)
    return " ".join(parts) if parts else None


def expected_text(
    prompt: str, *, declared: str | None = None, from_quotes: bool = False
) -> str | None:
    """The text a prompt's image should show: ``declared`` if given, else (only when
    ``from_quotes``) the prompt's :func:`quoted_text`, else ``None`` (not scored for text)."""
    if declared is not None:
        if not normalize_text(declared):
            raise ValueError(
                f"the declared text {declared!r} is empty once whitespace is ignored; "
                "declare the text the image should show, or leave it out"
            )
        return declared
    if from_quotes:
        return quoted_text(prompt)
    return None


def is_cjk(char: str) -> bool:
    """Whether ``char`` (one character) belongs to a script written without word spaces."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def normalize_text(text: str) -> str:
    """``text`` under the module's comparison rules (NFKC, casefold, whitespace)."""
    folded = _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    if " " not in folded:
        return folded
    kept = []
    for i, char in enumerate(folded):
        if char == " " and (is_cjk(folded[i - 1]) or is_cjk(folded[i + 1])):
            continue
        kept.append(char)
    return "".join(kept)


def text_accuracy(read: str, expected: str) -> float:
    """``1 - Levenshtein(read, expected) / max(len)`` after :func:`normalize_text`, in [0, 1].

    ``expected`` must contain something once normalised (a prompt without text is not
    scored, rather than scored 1 or 0). An empty reading of a non-empty text scores 0.
    """
    want = normalize_text(expected)
    if not want:
        raise ValueError(
            f"expected text {expected!r} is empty once whitespace is ignored: "
            "a prompt without text to render cannot be scored for text accuracy"
        )
    got = normalize_text(read)
    try:
        from rapidfuzz.distance import Levenshtein  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"text accuracy needs rapidfuzz, which is not installed; {_INSTALL_HINT}",
            name=exc.name,
        ) from exc
    return 1.0 - float(Levenshtein.normalized_distance(got, want))
