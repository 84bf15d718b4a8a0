"""Debian's Asterisk telephony prompts as a tiny real-speech corpus with a fixed low-resource split.

Source: the Debian package ``asterisk-core-sounds-en-wav`` (upstream asterisk-core-sounds 1.6.1), installed with
``apt-get install asterisk-core-sounds-en-wav``: 568 prompts recorded by one speaker (Allison Smith), 8 kHz 16-bit mono
WAV under ``/usr/share/asterisk/sounds/en_US_f_Allison/`` (some in subfolders: ``digits/``, ``letters/``,
``phonetic/``, ``dictate/``, ``followme/``, ``silence/``), 25.5 minutes in all. License: CC-BY-SA 3.0.

**Where the transcripts come from.** They are not in the audio package but in ``asterisk-core-sounds-en``
(``/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz``: ``name: transcript`` lines; ``name`` is the
file's path without ``.wav``; one transcript, ``pls-try-call-later``, has no file), which
``apt-get install --no-install-recommends`` does not pull in, and many Debian images drop ``/usr/share/doc``
altogether (a dpkg ``path-exclude``). So this package ships that file unchanged (version 1.6.1, with its
attribution, in ``hf_wav2vec2/corpora/data/``) and uses it whenever the system copy is absent
(:func:`find_transcripts`): only the audio package is needed.

**Which files are speech.** A prompt is skipped when its transcript is only a bracketed description -- ``[...]``,
``<...>`` or ``(...)`` -- or when it is shorter than 0.5 s. That rule skips exactly 17 files: 10 ``silence/N``
files, 6 tones (``beep``, ``beeperr``, ``ascending-2tone``, ``descending-2tone``, ``confbridge-join``,
``confbridge-leave``, all 0.2-0.43 s) and ``tt-monkeys`` (monkeys screaming). The shortest real word is 0.58 s, so
the duration floor only guards against future package versions. 551 speech prompts (24.26 minutes) remain.

**Transcripts.** :func:`normalize_transcript` removes bracketed notes (``at [@]``, ``IAX (note: does not say
"2")``), spells out standalone single digits (``press 1`` -> ``PRESS ONE``), upper-cases, turns hyphens into spaces,
strips the remaining punctuation except the apostrophe, and collapses whitespace: the alphabet is ``A-Z``, ``'`` and
space. A transcript is *unreliable* -- kept out of the labeled sets, but used as unlabeled audio -- when its spoken form
cannot be read off the text: multi-digit numbers (``dial 500``: "five hundred" or "five oh oh"?), digits glued to
letters (``3D``), acronyms (``PBX``, ``IAX``, ``A.M.``: spelled or said as a word?), a web address or the symbols
``* # @ $``. 18 speech prompts (2.63 minutes) are unreliable. Known typos of the source text ("represenatives",
"exclaimation", "fourtieth") are left as they are: they are read correctly, so they are small label noise.

**The split** (:func:`split_prompts`), fixed and deterministic: prompts are grouped by normalized transcript (so
prompts saying the same thing, e.g. ``invalid`` and ``pbx-invalid``, always land together: the test set holds only
sentences never heard in training), the groups are ordered by the SHA-1 of their transcript, and each group in turn
goes to the test set if it fits in 3.5 minutes, else to the training set if it fits in 10 minutes (the paper's
"10 min labeled" setting), else to the unlabeled set. Only reliable prompts of at most 20 s go to a labeled set.
Measured on the 1.6.1 package:

=============  =======  ============  =============================================================================
split          prompts  duration      contents
=============  =======  ============  =============================================================================
``train``      265      10.00 min     labeled fine-tuning set (599.8 s, 1327 words, 7371 characters)
``test``       88       3.49 min      labeled held-out set of other sentences (209.5 s, 464 words, 2584 characters)
``unlabeled``  198      10.77 min     the rest: 18 unreliable, 5 longer than 20 s, 175 that did not fit (646.3 s)
``pretrain``   463      20.77 min     ``unlabeled`` + ``train``: audio for pre-training, never the test prompts
=============  =======  ============  =============================================================================

(``pretrain`` includes the labeled training audio, as the paper's LibriSpeech pre-training data includes its
Libri-light labeled subsets.) :func:`export_split` writes a split as 16 kHz PCM WAV files with a ``metadata.csv``
(``file,text,duration``) that :func:`hf_wav2vec2.training.ctc_data.load_labeled_folder` and
``examples/finetune_ctc.py --train_dir`` read; pre-training reads an exported folder's audio files with
``hf_wav2vec2.training.data.load_audio_dataset(folder)``. The audio is telephone-band (8 kHz sampling: nothing
above 4 kHz), upsampled for the 16 kHz model.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from ..audio import DEFAULT_SAMPLING_RATE

logger = logging.getLogger(__name__)

SOUNDS_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TRANSCRIPTS_FILE = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
# The same file (asterisk-core-sounds-en 1.6.1-1, CC-BY-SA 3.0, attribution in data/README.md), for machines
# without the transcripts package or with /usr/share/doc excluded.
BUNDLED_TRANSCRIPTS_FILE = Path(__file__).resolve().parent / "data" / "core-sounds-en.txt.gz"
DEBIAN_PACKAGE = "asterisk-core-sounds-en-wav"
LICENSE = "CC-BY-SA-3.0"

MIN_SPEECH_SECONDS = 0.5
MAX_LABELED_SECONDS = 20.0
TRAIN_SECONDS = 600.0
TEST_SECONDS = 210.0
SPLITS = ("train", "test", "unlabeled", "pretrain")

_DIGIT_WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
_NOTE = re.compile(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)")
_ONLY_NOTE = re.compile(r"^\s*(\[[^\]]*\]|<[^>]*>|\([^)]*\))\s*$")
# Spoken forms that the text does not determine (see the module docstring).
_UNRELIABLE = (
    re.compile(r"\d{2,}|\d[.,]\d"),  # multi-digit numbers, decimals
    re.compile(r"\d[A-Za-z]|[A-Za-z]\d"),  # 3D, H323
    re.compile(r"\b[A-Z]{2,}\b"),  # acronyms: PBX, IAX, SIP, DAHDI
    re.compile(r"\b[A-Za-z]\.[A-Za-z]\."),  # dotted acronyms: A.M., P.M.
    re.compile(r"www\.|\.org|\.com"),  # web addresses
    re.compile(r"[*#@$&+=/\\|~^_]"),  # symbols read as words
)


@dataclass(frozen=True)
class Prompt:
    """One recorded prompt.

    Attributes:
        name: path below the sounds folder without ``.wav`` (``digits/7``, ``vm-goodbye``): the transcript key.
        path: the WAV file.
        transcript: the transcript as written in the package.
        text: the normalized transcript, or None when it is unreliable (see the module docstring).
        duration: seconds.
    """

    name: str
    path: Path
    transcript: str
    text: str | None
    duration: float

    @property
    def labeled(self) -> bool:
        return self.text is not None


def find_transcripts(transcripts_file: str | Path | None = None) -> Path:
    """The transcripts file: `transcripts_file` if given, else the system copy if present, else the bundled one."""
    if transcripts_file is not None:
        return Path(transcripts_file)
    return TRANSCRIPTS_FILE if TRANSCRIPTS_FILE.is_file() else BUNDLED_TRANSCRIPTS_FILE


def is_installed(sounds_dir: Path = SOUNDS_DIR, transcripts_file: str | Path | None = None) -> bool:
    """Whether the prompts' audio (the Debian package) and a transcripts file are present."""
    return Path(sounds_dir).is_dir() and find_transcripts(transcripts_file).is_file()


def _require_installed(sounds_dir: Path, transcripts_file: Path) -> None:
    if not Path(sounds_dir).is_dir():
        raise FileNotFoundError(
            f"Asterisk prompts not found: {sounds_dir} does not exist; install them with "
            f"`apt-get install {DEBIAN_PACKAGE}` (Debian/Ubuntu) or run `bash scripts/setup.sh`"
        )
    if not Path(transcripts_file).is_file():
        raise FileNotFoundError(f"Asterisk transcripts not found: {transcripts_file} does not exist")


def read_transcripts(path: str | Path | None = None) -> dict[str, str]:
    """``{name: transcript}`` from the package's ``name: transcript`` file (``;`` starts a comment line);
    `path` defaults to :func:`find_transcripts`'s choice."""
    path = find_transcripts(path)
    opener = gzip.open if str(path).endswith(".gz") else open
    transcripts = {}
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith(";") or ":" not in line:
                continue
            name, _, text = line.partition(":")  # the first colon: transcripts contain colons too
            transcripts[name.strip()] = text.strip()
    return transcripts


def is_non_speech(transcript: str, duration: float) -> bool:
    """Tones, silence and sound effects: a transcript that is only a bracketed description, or < 0.5 s of audio."""
    return bool(_ONLY_NOTE.match(transcript)) or duration < MIN_SPEECH_SECONDS


def normalize_transcript(transcript: str) -> str | None:
    """The spoken words of `transcript` as ``A-Z``, ``'`` and spaces, or None if they cannot be read off the text."""
    text = _NOTE.sub(" ", transcript)
    if any(pattern.search(text) for pattern in _UNRELIABLE):
        return None
    text = re.sub(r"\b\d\b", lambda match: f" {_DIGIT_WORDS[int(match.group())]} ", text)
    text = text.upper().replace("-", " ")
    text = re.sub(r"[^A-Z' ]", " ", text)
    # apostrophes only inside words ("DON'T"); quotes around words are punctuation
    text = re.sub(r"(?<![A-Z])'|'(?![A-Z])", " ", text)
    text = " ".join(text.split())
    return text or None


def load_prompts(sounds_dir: Path = SOUNDS_DIR, transcripts_file: str | Path | None = None) -> list[Prompt]:
    """Every speech prompt with a transcript, sorted by name (non-speech files are skipped and logged)."""
    sounds_dir, transcripts_file = Path(sounds_dir), find_transcripts(transcripts_file)
    _require_installed(sounds_dir, transcripts_file)
    transcripts = read_transcripts(transcripts_file)
    prompts, skipped = [], []
    for path in sorted(sounds_dir.rglob("*.wav")):
        name = path.relative_to(sounds_dir).with_suffix("").as_posix()
        if name not in transcripts:
            skipped.append(name)
            continue
        duration = sf.info(str(path)).duration
        transcript = transcripts[name]
        if is_non_speech(transcript, duration):
            skipped.append(name)
            continue
        prompts.append(Prompt(name, path, transcript, normalize_transcript(transcript), duration))
    logger.info("asterisk: %d speech prompts, %d non-speech or untranscribed files skipped", len(prompts), len(skipped))
    return prompts


def _group_key(prompt: Prompt) -> str:
    # Unreliable prompts never go to a labeled set, so their grouping only needs to be deterministic.
    return prompt.text if prompt.text is not None else f"\0{prompt.name}"


def split_prompts(
    prompts: list[Prompt],
    train_seconds: float = TRAIN_SECONDS,
    test_seconds: float = TEST_SECONDS,
    max_labeled_seconds: float = MAX_LABELED_SECONDS,
) -> dict[str, list[Prompt]]:
    """The fixed split (module docstring): ``{"train", "test", "unlabeled", "pretrain"}`` -> prompts sorted by name."""
    groups: dict[str, list[Prompt]] = {}
    for prompt in prompts:
        groups.setdefault(_group_key(prompt), []).append(prompt)
    order = sorted(groups, key=lambda key: hashlib.sha1(key.encode("utf-8")).hexdigest())

    splits: dict[str, list[Prompt]] = {"train": [], "test": [], "unlabeled": []}
    totals = {"train": 0.0, "test": 0.0}
    limits = {"test": test_seconds, "train": train_seconds}
    for key in order:
        group = groups[key]
        duration = sum(prompt.duration for prompt in group)
        labelable = all(p.labeled and p.duration <= max_labeled_seconds for p in group)
        target = "unlabeled"
        if labelable:
            for name in ("test", "train"):  # the test set first, so its size never depends on the train target
                if totals[name] + duration <= limits[name]:
                    target = name
                    break
        splits[target].extend(group)
        if target in totals:
            totals[target] += duration
    splits["pretrain"] = splits["unlabeled"] + splits["train"]
    return {name: sorted(items, key=lambda prompt: prompt.name) for name, items in splits.items()}


def load_split(split: str, sounds_dir: Path = SOUNDS_DIR, transcripts_file: str | Path | None = None) -> list[Prompt]:
    """The prompts of one split: ``"train"``, ``"test"``, ``"unlabeled"`` or ``"pretrain"``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split_prompts(load_prompts(sounds_dir, transcripts_file))[split]


def summarize(splits: dict[str, list[Prompt]]) -> dict[str, dict[str, float]]:
    """``{split: {"prompts": n, "seconds": s, "minutes": m}}``."""
    out = {}
    for name, prompts in splits.items():
        seconds = sum(prompt.duration for prompt in prompts)
        out[name] = {"prompts": len(prompts), "seconds": round(seconds, 3), "minutes": round(seconds / 60, 3)}
    return out


def export_prompts(prompts: list[Prompt], directory: str | Path, sampling_rate: int = DEFAULT_SAMPLING_RATE) -> Path:
    """Write `prompts` as `sampling_rate` PCM WAVs (keeping subfolders) plus ``metadata.csv``; returns the folder.

    ``metadata.csv`` has columns ``file`` (relative path), ``text`` (normalized transcript; empty for unreliable
    prompts) and ``duration`` (seconds). Existing files are overwritten, so an export can be refreshed in place.
    """
    from ..audio import load_audio

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for prompt in prompts:
        relative = Path(prompt.name + ".wav")
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        audio = load_audio(str(prompt.path), sampling_rate)
        sf.write(str(target), audio, sampling_rate, subtype="PCM_16")
        rows.append({"file": relative.as_posix(), "text": prompt.text or "", "duration": f"{prompt.duration:.3f}"})
    with (directory / "metadata.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "text", "duration"])
        writer.writeheader()
        writer.writerows(rows)
    return directory


def export_split(
    split: str,
    directory: str | Path,
    sampling_rate: int = DEFAULT_SAMPLING_RATE,
    sounds_dir: Path = SOUNDS_DIR,
    transcripts_file: str | Path | None = None,
) -> Path:
    """Export one split (see :func:`export_prompts`) into `directory`; returns it."""
    return export_prompts(load_split(split, sounds_dir, transcripts_file), directory, sampling_rate)


def export_all(
    directory: str | Path,
    splits: tuple[str, ...] = ("train", "test", "pretrain"),
    sampling_rate: int = DEFAULT_SAMPLING_RATE,
    sounds_dir: Path = SOUNDS_DIR,
    transcripts_file: str | Path | None = None,
) -> dict[str, Path]:
    """Export several splits into ``directory/<split>/``; returns ``{split: folder}``."""
    all_splits = split_prompts(load_prompts(sounds_dir, transcripts_file))
    return {name: export_prompts(all_splits[name], Path(directory) / name, sampling_rate) for name in splits}


__all__ = [
    "BUNDLED_TRANSCRIPTS_FILE",
    "DEBIAN_PACKAGE",
    "SOUNDS_DIR",
    "SPLITS",
    "TRANSCRIPTS_FILE",
    "Prompt",
    "export_all",
    "export_prompts",
    "export_split",
    "find_transcripts",
    "is_installed",
    "is_non_speech",
    "load_prompts",
    "load_split",
    "normalize_transcript",
    "read_transcripts",
    "split_prompts",
    "summarize",
]
