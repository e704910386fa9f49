"""Pure tagging core: captions and hashtags → the work topics of TAXONOMY.md.

No Faust, Kafka or ClickHouse imports here. The lexicon is data
(``schemas/lexicons/*.json``, see its README); this package compiles it into one
Aho-Corasick automaton over normalised text and applies the context rules.
"""

from workpulse.model.topics import TOPICS
from workpulse.tagging.language import guess_lang, video_lang
from workpulse.tagging.lexicon import LexiconError
from workpulse.tagging.normalise import normalise, split_hashtag
from workpulse.tagging.reload import TaggerReloader
from workpulse.tagging.tagger import (
    Tagger,
    TagResult,
    freeze_lexicon_objects,
    load_tagger,
)

__all__ = [
    "TOPICS",
    "LexiconError",
    "TagResult",
    "Tagger",
    "TaggerReloader",
    "freeze_lexicon_objects",
    "guess_lang",
    "load_tagger",
    "normalise",
    "split_hashtag",
    "video_lang",
]
