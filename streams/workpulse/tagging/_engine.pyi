"""Types of the compiled tagging engine (`_engine.pyx`)."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

class Trie:
    def __init__(self) -> None: ...
    def add(self, key: str, value: int) -> None: ...
    def build(self) -> None: ...
    def hits(self, text: str) -> list[tuple[int, int]]: ...
    def __len__(self) -> int: ...
    def state(self) -> tuple[Any, ...]: ...
    @staticmethod
    def from_state(state: tuple[Any, ...]) -> Trie: ...

class TagDigest:
    key: str
    text: str
    label: str
    direct: tuple[int, ...]
    topics: tuple[int, ...]
    rules: tuple[int, ...]
    live: bool
    def __init__(
        self,
        key: str,
        text: str,
        label: str,
        direct: tuple[int, ...],
        topics: tuple[int, ...],
        rules: tuple[int, ...],
    ) -> None: ...

class Engine:
    terms: Trie
    contexts: Trie
    rule_ids: dict[Any, int]
    topic_ids: dict[str, int]
    stats: dict[str, int]
    n_fallbacks: int
    def __init__(
        self,
        term_items: Iterable[tuple[str, Any]],
        context_items: Iterable[tuple[str, Any]],
        topics: Sequence[str],
        *,
        fold_entry: Callable[[int], list[tuple[int, int]]],
        sentence_chars: str,
        empty: Any,
        result_type: Callable[..., Any],
        primary: Callable[[str | None], str | None],
        guess_lang: Callable[[str], str | None],
        digest_of: Callable[[str], TagDigest],
        digests_max: int,
        state: dict[str, Any] | None = None,
    ) -> None: ...
    def state(self) -> dict[str, Any]: ...
    def normalise(self, caption: str) -> str | None: ...
    def tag_batch(self, items: Sequence[tuple[str, Sequence[str], str | None]]) -> list[Any]: ...
    def clear(self) -> None: ...

def hashtags_in(text: str) -> list[str]: ...
