"""Text normalisation shared by the lexicon compiler and the tagger.

Both sides go through the same function, so a lexicon term and a caption meet in one
canonical form:

* Unicode NFKC, then case folding;
* accents and Arabic diacritics removed (NFD, then combining marks dropped), so
  "démission" and "demission" are the same word, and أ إ آ ؤ ئ lose their hamza/madda;
* Arabic letters folded: ٱ → ا, ى → ي, ة → ه, Persian ی ک → ي ك, tatweel removed,
  Arabic-Indic digits → ASCII digits;
* text cut into tokens of letters and digits, joined by single spaces; sentence
  punctuation (. ! ? ؟ ; ؛ … newline) is kept as one-character tokens so rules can stay
  inside one sentence. Everything else (emoji, quotes, apostrophes, hyphens, '#', '_')
  is a separator: "d'embauche" → "d embauche", "burn-out" → "burn out".

Word boundaries are therefore script independent: a term matches whole tokens only.
"""

from __future__ import annotations

import re
import unicodedata

SENTENCE = "."
"""The sentence break written between hashtags; any of `SENTENCE_CHARS` is one too."""

SENTENCE_CHARS = ".!?;\n\r…؟؛۔。！？"
"""Characters kept as one-character tokens: rules never reach across them."""

_MARKS_RE = re.compile(
    "["
    "\u0300-\u036f"  # Latin combining accents (after NFKD: é → e + ◌́)
    "\u0610-\u061a"  # Arabic small signs
    "\u064b-\u065f"  # harakat, tanwin, shadda, sukun, hamza/madda above and below
    "\u0670"  # superscript alef
    "\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed"  # Quranic marks
    "\u08d3-\u08ff"  # extended Arabic marks
    "\u0640"  # tatweel
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff"  # zero-width and direction marks
    "]+"
)
_LETTER_FOLDS = (
    ("ٱ", "ا"),
    ("ى", "ي"),
    ("ی", "ي"),
    ("ة", "ه"),
    ("ۀ", "ه"),
    ("ک", "ك"),
    ("ڪ", "ك"),
)
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_TOKEN_CHAR = r"[^\W_]"  # letters and digits of any script
_TOKEN_RE = re.compile(_TOKEN_CHAR + r"+|[" + re.escape(SENTENCE_CHARS) + r"\x00]")
_tokens = _TOKEN_RE.findall
_SENTENCE_RE = re.compile("[" + re.escape(SENTENCE_CHARS) + "]")
sentence_break = _SENTENCE_RE.search
"""``sentence_break(text, lo, hi)`` is not None when a sentence ends between lo and hi."""
_unicode_normalize = unicodedata.normalize


def fold(text: str) -> str:
    """Compatibility-decompose (NFKD), casefold, drop accents and Arabic diacritics,
    fold Arabic letter variants and digits. Keeps punctuation and spacing.

    (NFKD then dropping marks gives the same letters as NFKC + NFD + dropping marks,
    in one pass: أ إ آ → ا, é → e, ﬁ → fi, full-width and styled letters → plain.)
    """
    if text.isascii():
        return text.lower()
    text = _MARKS_RE.sub("", _unicode_normalize("NFKD", text).casefold())
    for src, dst in _LETTER_FOLDS:
        if src in text:
            text = text.replace(src, dst)
    if not text.isascii():
        text = text.translate(_DIGITS) if _has_eastern_digits(text) else text
    return text


_EASTERN_DIGITS_RE = re.compile("[٠-٩۰-۹]")


def _has_eastern_digits(text: str) -> bool:
    return _EASTERN_DIGITS_RE.search(text) is not None


def normalise(text: str) -> str:
    """Canonical token form: tokens joined by single spaces, sentence breaks kept.

    >>> normalise("Je DÉMISSIONNE, j'en peux plus!")
    "je demissionne j en peux plus !"
    >>> normalise("الإرهاق الوظيفيّ")
    'الارهاق الوظيفي'
    """
    return " ".join(_tokens(fold(text)))


def normalise_word(word: str) -> str:
    """`normalise` of one whitespace-free chunk of text (used through a word cache).

    Tokens never span whitespace, so normalising a text word by word and joining the
    non-empty results with single spaces gives `normalise` of the text.
    """
    return " ".join(_tokens(fold(word)))


_TOKEN_CHAR_RE = re.compile(_TOKEN_CHAR)
CLASS_SEPARATOR, CLASS_TOKEN, CLASS_SENTENCE, CLASS_UNHANDLED = 0, 1, 2, 3


def fold_code_point(cp: int) -> list[tuple[int, int]]:
    """How a caption's normalisation treats one code point: the code points it folds to,
    each with its class (`CLASS_TOKEN`: part of a token; `CLASS_SENTENCE`: a one-character
    token; `CLASS_SEPARATOR`: between tokens). Newlines are sentence breaks ("."), as in
    `Tagger._normalise_captions`; NUL is `CLASS_UNHANDLED`.

    The fold of a text is the fold of each of its code points, joined: NFKD, case folding,
    mark removal and the letter and digit folds act on one code point at a time, and the
    combining marks that canonical reordering could move are never token characters.
    """
    ch = chr(cp)
    if ch in "\n\r":
        return [(ord(SENTENCE), CLASS_SENTENCE)]
    if ch == "\x00":
        return [(0, CLASS_UNHANDLED)]
    out = []
    for c in fold(ch):
        if _TOKEN_CHAR_RE.match(c):
            cls = CLASS_TOKEN
        elif c in SENTENCE_CHARS:
            cls = CLASS_SENTENCE
        else:
            cls = CLASS_SEPARATOR
        out.append((ord(c), cls))
    return out


# Hashtags ------------------------------------------------------------------------------

_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿ"
_CAMEL_RE = re.compile(
    rf"(?<=[{_LOWER}])(?=[{_UPPER}])"  # quitMy → quit My
    rf"|(?<=[{_UPPER}])(?=[{_UPPER}][{_LOWER}])"  # WFHLife → WFH Life
    r"|(?<=[^\W\d_])(?=\d)"  # layoffs2024 → layoffs 2024
    r"|(?<=\d)(?=[^\W\d_])"  # 9to5 → 9 to 5
)


def split_hashtag(tag: str) -> str:
    """Split a hashtag's visible word structure, before normalisation.

    camelCase / PascalCase, acronym+Word, letter/digit changes; '_' and '-' are already
    separators for `normalise`.

    >>> split_hashtag("#QuitMyJob")
    'Quit My Job'
    >>> split_hashtag("WFHLife")
    'WFH Life'
    """
    tag = tag.lstrip("#＃")
    return _CAMEL_RE.sub(" ", tag)


def compact(text: str) -> str:
    """A normalised text with its spaces removed (the key used to segment hashtags)."""
    return text.replace(" ", "")
