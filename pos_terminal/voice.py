"""Spoken payment announcements ("微信收款 12.50 元"), offline, through espeak-ng.

Stalls keep a 收钱吧-style speaker because the vendor, weighing the next customer's goods,
must hear that the last one paid. espeak-ng's Mandarin dictionary lacks many common
characters, so the words are handed to its pinyin voice (``cmn-latn-pinyin``) with tone
numbers from the small fixed vocabulary below: every announcement is one of a few phrases
and an amount read in Chinese numerals, which that voice speaks correctly.

Speaking runs on a worker thread: an MQTT callback or the screen must never wait for audio.
"""

from __future__ import annotations

import io
import logging
import queue
import shutil
import subprocess
import tempfile
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from market_protocol import format_fen

__all__ = ["CHANNEL_WORDS", "announcement_text", "spoken_words", "pinyin_for", "render_wav",
           "wav_peak", "Announcer", "VoiceError", "ESPEAK", "VOICE"]

log = logging.getLogger(__name__)

ESPEAK = "espeak-ng"
VOICE = "cmn-latn-pinyin"
#: Players tried in order for the rendered WAV (ALSA, PulseAudio, PipeWire).
PLAYERS = (("aplay", "-q"), ("paplay",), ("pw-play",))

#: What each payment channel is called aloud; an unknown channel is "扫码" (scanned code).
CHANNEL_WORDS = {"wechatpay": "微信", "alipay": "支付宝", "cash": "现金", "unionpay": "云闪付"}
_DEFAULT_CHANNEL = "扫码"
_PINYIN = {
    "微": "wei1", "信": "xin4", "支": "zhi1", "付": "fu4", "宝": "bao3", "现": "xian4",
    "金": "jin1", "云": "yun2", "闪": "shan3", "扫": "sao3", "码": "ma3", "收": "shou1",
    "款": "kuan3", "元": "yuan2", "点": "dian3", "零": "ling2", "一": "yi1", "二": "er4",
    "三": "san1", "四": "si4", "五": "wu3", "六": "liu4", "七": "qi1", "八": "ba1",
    "九": "jiu3", "十": "shi2", "百": "bai3", "千": "qian1", "万": "wan4", "亿": "yi4",
}
_DIGITS = "零一二三四五六七八九"


class VoiceError(RuntimeError):
    """espeak-ng is missing or failed; the message says how to fix it."""


def announcement_text(channel: str, amount_fen: int) -> str:
    """What the screen shows and the speaker says: ``微信收款 12.50 元``."""
    return f"{CHANNEL_WORDS.get(channel, _DEFAULT_CHANNEL)}收款 {format_fen(amount_fen, symbol='')} 元"


def _section(number: int) -> str:
    """0 < number < 10000 in Chinese numerals, one 零 for each run of inner zeros."""
    words, zero = "", False
    for power, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = number // power % 10
        if digit == 0:
            zero = bool(words)
            continue
        words += ("零" if zero else "") + _DIGITS[digit] + unit
        zero = False
    return words


def _integer_words(number: int) -> str:
    """0 <= number < 10**12: 12 -> 十二, 105 -> 一百零五, 20300 -> 二万零三百."""
    if number == 0:
        return "零"
    words, need_zero = "", False
    for power, unit in ((10**8, "亿"), (10**4, "万"), (1, "")):
        part = number // power % 10**4
        if part == 0:
            need_zero = bool(words)
            continue
        if words and (need_zero or part < 1000):
            words += "零"
        words += _section(part) + unit
        need_zero = False
    return words[1:] if words.startswith("一十") else words


def spoken_words(channel: str, amount_fen: int) -> str:
    """The announcement in words: 12.50 -> ``微信收款十二点五元``."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen < 0:
        raise ValueError(f"amount_fen must be a whole number >= 0, not {amount_fen!r}")
    yuan, fen = divmod(amount_fen, 100)
    decimals = f"{fen:02d}".rstrip("0")
    words = _integer_words(yuan)
    if decimals:
        words += "点" + "".join(_DIGITS[int(digit)] for digit in decimals)
    return f"{CHANNEL_WORDS.get(channel, _DEFAULT_CHANNEL)}收款{words}元"


def pinyin_for(words: str) -> str:
    """Tone-numbered pinyin for the pinyin voice; only the announcement vocabulary."""
    try:
        return " ".join(_PINYIN[char] for char in words)
    except KeyError as exc:
        raise ValueError(f"no pinyin for {exc.args[0]!r} in the announcement vocabulary") \
            from None


def render_wav(words: str, *, volume: int = 100, speed: int = 150) -> bytes:
    """The spoken ``words`` as a WAV file; volume 0..200 (espeak-ng's amplitude)."""
    if shutil.which(ESPEAK) is None:
        raise VoiceError("espeak-ng is not installed: run scripts/install-system-packages.sh")
    # A file, not --stdout: streamed output carries placeholder sizes in its WAV header.
    with tempfile.TemporaryDirectory(prefix="tracepay-voice-") as folder:
        path = Path(folder) / "say.wav"
        command = [ESPEAK, "-v", VOICE, "-a", str(volume), "-s", str(speed), "-w", str(path),
                   pinyin_for(words)]
        done = subprocess.run(command, capture_output=True, timeout=30, check=False)
        wav = path.read_bytes() if path.exists() else b""
    if done.returncode != 0 or not wav.startswith(b"RIFF"):
        raise VoiceError(f"espeak-ng failed ({done.returncode}): "
                         f"{done.stderr.decode(errors='replace').strip()[:200]}")
    return wav


def wav_peak(wav_bytes: bytes) -> int:
    """The largest absolute 16-bit sample: 0 means silence."""
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        if wav.getsampwidth() != 2:
            raise ValueError("expected 16-bit samples")
        frames = wav.readframes(wav.getnframes())
    samples = memoryview(frames).cast("h")
    return max((abs(sample) for sample in samples), default=0)


def _play(wav_bytes: bytes) -> bool:
    for player, *args in PLAYERS:
        if shutil.which(player):
            subprocess.run([player, *args, "-"] if player == "aplay" else [player, *args,
                           "/dev/stdin"], input=wav_bytes, timeout=30, check=False)
            return True
    return False


@dataclass
class Announcer:
    """Speaks each announcement once, in order, on its own thread.

    ``volume`` and ``muted`` may be changed at any time; a muted announcer renders nothing.
    ``play`` is the sound output (the first of aplay, paplay, pw-play found); the last WAV
    rendered is kept in ``last_wav`` so a test, or a terminal without a sound card, can
    still check what would have been said.
    """

    volume: int = 100
    muted: bool = False
    play: Callable[[bytes], bool] = _play

    def __post_init__(self) -> None:
        self._queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.last_wav: bytes | None = None
        self.last_words: str | None = None
        self.spoken = 0
        self._warned = False

    def announce(self, channel: str, amount_fen: int) -> None:
        """Queue ``<channel>收款 <amount> 元``; returns at once."""
        if self.muted:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="voice", daemon=True)
                self._thread.start()
        self._queue.put((channel, amount_fen))

    def on_result(self, stored: Any, result: dict[str, Any]) -> None:
        """A ``Terminal.on_result`` callback: announce each sale that has just been paid."""
        if result.get("status") == "paid":
            self.announce(result.get("channel", ""), int(result["amount_fen"]))

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once everything queued was spoken (for tests and a clean shutdown)."""
        done = threading.Event()

        def drain() -> None:
            self._queue.join()
            done.set()
        threading.Thread(target=drain, daemon=True).start()
        return done.wait(timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._speak(*item)
            except Exception:  # a missing speaker must never stop the till
                log.exception("payment announcement failed")
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _speak(self, channel: str, amount_fen: int) -> None:
        if self.muted:
            return
        words = spoken_words(channel, amount_fen)
        wav = render_wav(words, volume=self.volume)
        self.last_words, self.last_wav = words, wav
        self.spoken += 1
        if not self.play(wav) and not self._warned:
            self._warned = True
            log.warning("no audio player (aplay, paplay, pw-play) found: announcements are "
                        "rendered but not heard")
