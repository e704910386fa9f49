"""The one language guess: for tagging rules that depend on the language, and for the
`lang` of a stored video whose event carries none. Pure."""

from __future__ import annotations

import re

from workpulse.tagging.normalise import normalise

UNDETERMINED = "und"
"""BCP 47 "undetermined": the stored language when none is given or guessed."""

_FRENCH_HINT = re.compile(
    r"\b(?:les|des|du|une|est|sont|avec|pour|dans|pas|mon|ma|mes|je|j|l|d|qu|c|n|au|aux"
    r"|nous|vous|ils|elles|leur|leurs|cette|chez|sur|tres|trop|mais|ou|ca|sa|son|ses|la|le"
    r"|de|et|un|ce|ces|qui|que|il|elle|tu|te|me|se|ne|tout|tous|plus|ai|suis|sans|contre)\b"
)
_ARABIC_SCRIPT = re.compile("[\u0600-\u06ff]")
_ENGLISH_HINT = re.compile(
    r"\b(?:the|and|is|are|my|your|our|their|of|to|for|with|this|that|i|you|we|they|it|in|on"
    r"|at|was|were|be|been|what|how|why|not|from|by|an|a)\b"
)


def guess_lang(normalised: str) -> str | None:
    """A cheap guess on normalised text (`tagging.normalise`): Arabic script → "ar";
    otherwise whichever of French and English has more of its function words, or None."""
    if _ARABIC_SCRIPT.search(normalised):  # (a regex: a character loop cost ~4 µs)
        return "ar"
    fr = len(_FRENCH_HINT.findall(normalised))
    en = len(_ENGLISH_HINT.findall(normalised))
    if fr > en:
        return "fr"
    if en > fr:
        return "en"
    return None


def primary(lang: str | None) -> str | None:
    """BCP 47 primary subtag, lower case: "fr-CA" → "fr"; None or "" → None."""
    if not lang:
        return None
    return lang.replace("_", "-").split("-", 1)[0].lower()


def video_lang(lang: str | None, caption: str) -> str:
    """The language stored for a video: its event's primary subtag, else the guess from
    its caption, else "und"."""
    return primary(lang) or guess_lang(normalise(caption)) or UNDETERMINED
