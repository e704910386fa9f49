"""Lines read to a bounded size (`workpulse.lines`), and the JSONL messages of
`workpulse produce` and `demo --input` built on them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from workpulse.kafka.producer import MAX_REQUEST_BYTES, TooLong, count_lines, file_messages
from workpulse.lines import SKIP_CHUNK, bounded_lines
from workpulse.lines import count_lines as count_chunked


@pytest.mark.parametrize(
    ("data", "limit", "expected"),
    [
        (b"", 5, []),
        (b"ab\ncd", 5, [b"ab\n", b"cd"]),
        (b"abcde\r\nf\n", 5, [b"abcde\r\n", b"f\n"]),  # max_bytes, CR and LF: whole
        (b"abcdefgh\nok\n", 5, [8, b"ok\n"]),  # too long: its size, the next line read
        (b"abcdefgh", 5, [8]),  # too long and last, without a line feed
        (b"x" * (3 * SKIP_CHUNK) + b"\ny\n", 5, [3 * SKIP_CHUNK, b"y\n"]),
    ],
)
def test_bounded_lines(data: bytes, limit: int, expected: list[bytes | int]) -> None:
    assert list(bounded_lines(io.BytesIO(data), limit)) == expected


@pytest.mark.parametrize(
    ("data", "lines"),
    [(b"", 0), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"\n\n", 2),
     (b"x" * (2 * SKIP_CHUNK) + b"\n" + b"y", 2), (b"x" * SKIP_CHUNK, 1)],
)  # fmt: skip
def test_count_lines(data: bytes, lines: int, tmp_path: Path) -> None:
    assert count_chunked(io.BytesIO(data)) == lines
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    assert count_lines(path) == lines


class _Reads(io.BytesIO):
    """A file that records the most bytes one read asked for."""

    largest = 0

    def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        _Reads.largest = max(_Reads.largest, size if size is not None and size >= 0 else 1 << 62)
        return super().readline(size)


def test_file_messages_name_a_line_too_long_and_never_read_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line without end (`/dev/zero`) grew `produce` and `demo --input` by 300 MB/s."""
    long = b"{" + b" " * (MAX_REQUEST_BYTES + 10) + b"}"
    data = b'{"video_id": "a"}\n' + long + b"\nnot json\n"
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    _Reads.largest = 0
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: _Reads(real_open(self, "rb").read()))
    assert list(file_messages(path)) == [
        (b"a", b'{"video_id": "a"}'),
        TooLong(len(long)),
        (None, b"not json"),
    ]
    assert 0 < _Reads.largest <= max(MAX_REQUEST_BYTES + 2, SKIP_CHUNK)
