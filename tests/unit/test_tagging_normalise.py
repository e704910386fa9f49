"""Normalisation: Unicode, accents, Arabic folding and prefixes, hashtag splitting."""

from __future__ import annotations

import pytest
from tests.support.taggers import shared_tagger

from workpulse.tagging.lexicon import Morphology, expand
from workpulse.tagging.normalise import fold, normalise, split_hashtag


@pytest.fixture(scope="module")
def tagger():
    return shared_tagger()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I QUIT my Job", "i quit my job"),
        ("Je DÉMISSIONNE, j'en peux plus", "je demissionne j en peux plus"),
        ("Préavis de démission", "preavis de demission"),
        ("Burn-out", "burn out"),
        ("télétravail", "teletravail"),
        ("teletravail", "teletravail"),
        ("Straße", "strasse"),
        ("ＱＵＩＴ ｍｙ ｊｏｂ", "quit my job"),  # full-width
        ("𝐪𝐮𝐢𝐭", "quit"),  # styled letters
        ("two weeks’ notice", "two weeks notice"),
        ("quit 🔥 my job", "quit my job"),
        ("#QuitMyJob", "quitmyjob"),
        ("quit_my_job", "quit my job"),
    ],
)
def test_latin(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("استقالة", "استقاله"),  # ta marbuta → ha
        ("إضراب", "اضراب"),  # alef with hamza below
        ("أستقيل", "استقيل"),  # alef with hamza above
        ("آخر يوم", "اخر يوم"),  # alef madda
        ("ٱلعمل", "العمل"),  # alef wasla
        ("على", "علي"),  # alef maqsura → ya
        ("الوظيفيّ", "الوظيفي"),  # shadda
        ("رَاتِب", "راتب"),  # harakat
        ("استقالـــة", "استقاله"),  # tatweel
        ("راتبي ٥٠٠٠", "راتبي 5000"),  # Arabic-Indic digits
        ("هل وجدت شغفك؟ نعم", "هل وجدت شغفك ؟ نعم"),  # Arabic question mark = break
    ],
)
def test_arabic(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_sentence_breaks_are_tokens() -> None:
    assert normalise("Strike! Summer lookbook") == "strike ! summer lookbook"
    assert normalise("a. b? c; d\ne") == "a . b ? c ; d \n e"


def test_fold_keeps_spacing() -> None:
    assert fold("Élan, VITAL") == "elan, vital"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("QuitMyJob", "Quit My Job"),
        ("#quitMyJob", "quit My Job"),
        ("WFHLife", "WFH Life"),
        ("layoffs2024", "layoffs 2024"),
        ("9to5", "9 to 5"),
        ("GrandeDémission", "Grande Démission"),
        ("quit_my_job", "quit_my_job"),  # underscores are separators for normalise
    ],
)
def test_split_hashtag(tag: str, expected: str) -> None:
    assert split_hashtag(tag) == expected


@pytest.mark.parametrize(
    ("tag", "words"),
    [
        ("QuitMyJob", "quit my job"),
        ("quit_my_job", "quit my job"),
        ("quitmyjob", "quit my job"),
        ("greatresignation", "great resignation"),
        ("quietquitting", "quiet quitting"),
        ("wfhlife", "wfh life"),
        ("remotework", "remote work"),
        ("toxicboss", "toxic boss"),
        ("techlayoffs", "tech layoffs"),
        ("googlelayoffs", "google layoffs"),  # unknown word around a long term
        ("salarytransparency", "salary transparency"),
        ("العمل_عن_بعد", "العمل عن بعد"),
    ],
)
def test_hashtag_segmentation(tagger, tag: str, words: str) -> None:
    assert tagger.hashtag_text(tag).startswith(words)


@pytest.mark.parametrize("tag", ["fyp", "FYP", "pourtoi", "viral", "اكسبلور", "ForYouPage"])
def test_generic_hashtags_are_empty(tagger, tag: str) -> None:
    assert tagger.hashtag_text(tag) == ""


@pytest.mark.parametrize("tag", ["reunion", "unionjack", "strikeforce2"])
def test_hashtags_not_oversegmented(tagger, tag: str) -> None:
    assert tagger.tag("", [tag]).topics == ()


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("quit my job", ["quit my job"]),
        ("(quit|quitting) my job", ["quit my job", "quitting my job"]),
        ("(my|) job", ["my job", "job"]),
        ("sous-pay(é|ée)", ["sous-payé", "sous-payée"]),
    ],
)
def test_expand(pattern: str, expected: list[str]) -> None:
    assert expand(pattern) == expected


def test_expand_rejects_nesting() -> None:
    with pytest.raises(ValueError):
        expand("(a|(b|c))")


ARABIC = Morphology(
    prefixes=("و", "ف", "ب", "ل", "ك", "وب"),
    article="ال",
    article_prefixes=("ال", "وال", "بال", "لل", "وبال"),
    suffixes=("ي", "ك", "ها"),
    stem_changes=(("ه", "ت"),),
)


@pytest.mark.parametrize(
    ("term", "surface"),
    [
        ("راتب", "راتب"),
        ("راتب", "الراتب"),
        ("راتب", "وبالراتب"),
        ("راتب", "للراتب"),
        ("راتب", "وراتب"),
        ("استقاله", "استقالتي"),  # ta marbuta + suffix
        ("استقاله", "واستقالتها"),
        ("الاحتراق الوظيفي", "والاحتراق الوظيفي"),
        ("الاحتراق الوظيفي", "احتراق الوظيفي"),
    ],
)
def test_arabic_morphology(term: str, surface: str) -> None:
    variants = ARABIC.variants(term, wildcard=False)
    ok = False
    for text, endings in variants:
        if endings is None:
            ok |= text == surface
        elif surface.startswith(text):
            ok |= surface[len(text) :] in endings
    assert ok, (term, surface)


@pytest.mark.parametrize(
    ("caption", "topic"),
    [
        ("وبالراتب الجديد اشتريت سيارة", "salary"),
        ("قدّمتُ استقالتي اليوم", "resignation"),
        ("والإضراب مستمر", "labor_action"),
        ("للعمل عن بعد مزايا", "remote_work"),
    ],
)
def test_arabic_prefixes_and_diacritics_end_to_end(tagger, caption: str, topic: str) -> None:
    assert topic in tagger.tag(caption, (), "ar").topics


class _CountingSet(frozenset):
    """The strong terms, counting the lookups the segmentation makes."""

    lookups = 0

    def __contains__(self, item: object) -> bool:
        type(self).lookups += 1
        return super().__contains__(item)


@pytest.mark.parametrize(
    ("length", "segmented"),
    [
        (200, True),  # the longest hashtag a video may carry: still segmented
        (201, False),  # longer, it is matched as one word
        (20_000, False),  # a caption's "#eee…" (it took four minutes: see below)
    ],
)
def test_a_long_hashtag_costs_lookups_linear_in_its_length(length: int, segmented: bool) -> None:
    """The search for a strong term inside an unknown hashtag tried every size up to the
    hashtag's own: cubic in its length, and a 20,000-character hashtag written in a
    caption held a worker for four minutes. Sizes now stop at the longest term, and only
    hashtags the contract could carry are segmented."""
    from tests.support.taggers import shared_tagger

    from workpulse.tagging.tagger import Tagger

    tagger = Tagger(shared_tagger().lexicon, engine="python")
    tagger._strong = _CountingSet(tagger._strong)
    _CountingSet.lookups = 0
    half = (length - len("layoffs")) // 2
    tag = "q" * half + "layoffs" + "z" * (length - half - len("layoffs"))
    words = tagger.hashtag_text(tag).split(" ")
    assert ("layoffs" in words) is segmented
    assert _CountingSet.lookups <= length * tagger._strong_maxlen


def test_the_hashtag_limit_is_on_the_hashtag_as_sent() -> None:
    """Normalising lengthens some letters (ﬃ → ffi): a 73-character hashtag made 201
    characters was no longer segmented (found in review)."""
    from tests.support.taggers import shared_tagger

    assert shared_tagger().tag("", ["quitmyjob" + "ﬃ" * 64]).topics == ("resignation",)
