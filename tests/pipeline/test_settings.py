import pytest

from edge_server.pipeline.errors import StreamError
from edge_server.pipeline.settings import DEFAULT_ANALYSES, Encoding, make_settings


def _make(**kw: object) -> object:
    args: dict[str, object] = dict(
        sample_rate_hz=44100,
        encoding=Encoding.PCM16_LE,
        channels=1,
        analyses=frozenset(),
        session_id="abc",
        client_name="t",
    )
    args.update(kw)
    return make_settings(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [7999, 48001, 0, 96000])
def test_sample_rate_range(rate: int) -> None:
    with pytest.raises(StreamError, match=r"config.sample_rate_hz=.* out of range \[8000, 48000\]"):
        _make(sample_rate_hz=rate)


@pytest.mark.parametrize("channels", [0, 3])
def test_channels_range(channels: int) -> None:
    with pytest.raises(StreamError, match=r"config.channels=.* out of range \[1, 2\]"):
        _make(channels=channels)


@pytest.mark.parametrize("sid", ["", "a b", "x" * 129, "é"])
def test_session_id_format(sid: str) -> None:
    with pytest.raises(StreamError, match="config.session_id"):
        _make(session_id=sid)


def test_defaults_for_analyses() -> None:
    s = _make(sample_rate_hz=8000)
    assert s.analyses == DEFAULT_ANALYSES  # type: ignore[attr-defined]
