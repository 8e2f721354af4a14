"""Hangul syllables <-> jamo (letters), the algorithm of the Unicode standard (section 3.12, "Conjoining Jamo
Behavior").

Each of the 11,172 modern syllables U+AC00..U+D7A3 is an initial consonant (19 choices), a medial vowel (21) and an
optional final consonant (27, or none): ``syllable = 0xAC00 + (initial * 21 + medial) * 28 + final``. ``decompose``
writes each syllable as its conjoining jamo (initials U+1100..U+1112, medials U+1161..U+1175, finals U+11A8..U+11C2,
so an initial and a final of the same consonant are different characters and the jamo of a text parse back into
syllables one way only); ``compose`` puts them back together. Every other character passes through both unchanged:
``compose(decompose(text)) == text`` for any NFC text (which is how text is normally stored), and ``compose`` equals
``unicodedata.normalize("NFC", ...)`` on Hangul, leaving what does not form a syllable (a medial without an initial,
say) as the jamo it is.
"""

from __future__ import annotations

import re

SYLLABLE_BASE, INITIAL_BASE, MEDIAL_BASE, FINAL_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7  # (final 0: none)
INITIALS, MEDIALS, FINALS = 19, 21, 28
SYLLABLES = INITIALS * MEDIALS * FINALS  # 11,172
INITIAL_JAMO = "".join(chr(INITIAL_BASE + i) for i in range(INITIALS))
MEDIAL_JAMO = "".join(chr(MEDIAL_BASE + i) for i in range(MEDIALS))
FINAL_JAMO = "".join(chr(FINAL_BASE + i) for i in range(1, FINALS))
JAMO = INITIAL_JAMO + MEDIAL_JAMO + FINAL_JAMO  # the 67 modern conjoining jamo

_DECOMPOSED = {
    SYLLABLE_BASE + s: chr(INITIAL_BASE + s // (MEDIALS * FINALS))
    + chr(MEDIAL_BASE + s // FINALS % MEDIALS)
    + (chr(FINAL_BASE + s % FINALS) if s % FINALS else "")
    for s in range(SYLLABLES)
}
_INITIAL, _MEDIAL, _FINAL = (f"[{chars[0]}-{chars[-1]}]" for chars in (INITIAL_JAMO, MEDIAL_JAMO, FINAL_JAMO))
_COMPOSABLE = re.compile(f"{_INITIAL}{_MEDIAL}{_FINAL}?|[\uac00-\ud7a3]{_FINAL}")


def is_syllable(char: str) -> bool:
    """Whether ``char`` is one of the 11,172 modern Hangul syllables."""
    return SYLLABLE_BASE <= ord(char) < SYLLABLE_BASE + SYLLABLES


def decompose(text: str) -> str:
    """``text`` with every Hangul syllable written as its initial, medial and (if any) final conjoining jamo: 한 ->
    ᄒ ᅡ ᆫ (three characters), 하 -> ᄒ ᅡ; other characters unchanged."""
    return text.translate(_DECOMPOSED)


def _syllable(match: re.Match[str]) -> str:
    jamo = match.group()
    if is_syllable(jamo[0]):  # a syllable and a final: joined if the syllable has none yet
        offset = ord(jamo[0]) - SYLLABLE_BASE
        return chr(ord(jamo[0]) + ord(jamo[1]) - FINAL_BASE) if offset % FINALS == 0 else jamo
    initial, medial = ord(jamo[0]) - INITIAL_BASE, ord(jamo[1]) - MEDIAL_BASE
    final = ord(jamo[2]) - FINAL_BASE if len(jamo) == 3 else 0
    return chr(SYLLABLE_BASE + (initial * MEDIALS + medial) * FINALS + final)


def compose(text: str) -> str:
    """The inverse of ``decompose``: each initial + medial (+ final) jamo sequence -> its syllable (and a syllable
    without final + a final jamo -> the syllable with it, as NFC does); everything else unchanged, including jamo
    that do not fit that order."""
    return _COMPOSABLE.sub(_syllable, text)


def syllable_validity(text: str) -> tuple[int, int]:
    """``(syllables, positions)`` of a composed text: its Hangul syllables, and those plus the modern conjoining jamo
    left over by ``compose`` (each one a place where a syllable was written in the wrong order). Their ratio is the
    share of valid syllables in text recomposed from generated jamo."""
    syllables = sum(map(is_syllable, text))
    return syllables, syllables + sum(c in JAMO for c in text)
