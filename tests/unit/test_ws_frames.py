"""router/ws_frames.text_frame against the websockets library's own frame parser (RFC 6455 §5.2)."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from router.ws_frames import text_frame


def parse(data: bytes, count: int = 1) -> list[Frame]:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    for _ in range(count):
        parser = Frame.parse(reader.read_exact, mask=False)  # server frames are unmasked
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
        else:
            raise AssertionError("incomplete frame")
    assert reader.at_eof()  # nothing left over
    return frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frames_of_every_length_encoding_parse_back(size: int) -> None:
    payload = ("é" * (size // 2)).encode() + b"a" * (size % 2)  # multi-byte UTF-8, exactly ``size`` bytes
    assert len(payload) == size
    (frame,) = parse(text_frame(payload))
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, payload)


def test_frames_written_together_parse_one_after_another() -> None:
    texts = [b'{"id":"1"}', b"x" * 300, b""]
    frames = parse(b"".join(text_frame(t) for t in texts), len(texts))
    assert [f.data for f in frames] == texts
