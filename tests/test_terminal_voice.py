"""Spoken payment announcements: real espeak-ng, real WAV bytes."""

from __future__ import annotations

import io
import threading
import wave

import pytest

from pos_terminal.voice import (
    Announcer,
    announcement_text,
    pinyin_for,
    render_wav,
    spoken_words,
    wav_peak,
)


@pytest.mark.parametrize(("fen", "words"), [
    (1250, "微信收款十二点五元"), (5, "微信收款零点零五元"), (100, "微信收款一元"),
    (1005, "微信收款十点零五元"), (100500, "微信收款一千零五元"),
    (101000, "微信收款一千零一十元"), (2030000, "微信收款二万零三百元"),
    (4294967295, "微信收款四千二百九十四万九千六百七十二点九五元"),
])
def test_amounts_are_read_in_chinese_numerals(fen: int, words: str) -> None:
    assert spoken_words("wechatpay", fen) == words


def test_channels_are_named_and_the_screen_text_keeps_digits() -> None:
    assert announcement_text("wechatpay", 1250) == "微信收款 12.50 元"
    assert announcement_text("alipay", 300) == "支付宝收款 3.00 元"
    assert announcement_text("cash", 1) == "现金收款 0.01 元"
    assert spoken_words("sandbox", 300) == "扫码收款三元"
    assert pinyin_for("微信收款十二点五元") == "wei1 xin4 shou1 kuan3 shi2 er4 dian3 wu3 yuan2"
    with pytest.raises(ValueError):
        spoken_words("cash", -1)


def _seconds(wav_bytes: bytes) -> float:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        return wav.getnframes() / wav.getframerate()


def test_espeak_renders_a_non_silent_wav_whose_length_follows_the_words() -> None:
    short = render_wav(spoken_words("wechatpay", 1250))
    long = render_wav(spoken_words("wechatpay", 4294967295))
    assert short.startswith(b"RIFF") and wav_peak(short) > 1000
    assert _seconds(long) > _seconds(short) > 1.0


def test_volume_scales_the_samples_and_zero_is_silence() -> None:
    words = spoken_words("alipay", 1250)
    assert wav_peak(render_wav(words, volume=0)) == 0
    assert wav_peak(render_wav(words, volume=40)) < wav_peak(render_wav(words, volume=150))


def test_announcer_speaks_each_paid_result_on_its_own_thread_and_mute_silences_it() -> None:
    played: list[tuple[str, bytes]] = []
    announcer = Announcer(play=lambda wav: played.append((threading.current_thread().name,
                                                          wav)) or True)
    announcer.on_result(None, {"status": "pending", "channel": "wechatpay", "amount_fen": 1250})
    announcer.on_result(None, {"status": "paid", "channel": "wechatpay", "amount_fen": 1250})
    assert announcer.wait_idle()
    assert announcer.last_words == "微信收款十二点五元" and announcer.spoken == 1
    assert [name for name, _ in played] == ["voice"] and wav_peak(played[0][1]) > 1000
    announcer.muted = True
    announcer.on_result(None, {"status": "paid", "channel": "alipay", "amount_fen": 99})
    assert announcer.wait_idle()
    assert announcer.spoken == 1 and len(played) == 1
    announcer.close()
