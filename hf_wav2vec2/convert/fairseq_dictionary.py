"""fairseq's letter dictionary (``dict.ltr.txt``) -> the vocabulary and processor of a converted CTC model."""

import json
import logging
import tempfile
from pathlib import Path

from . import ConversionError

logger = logging.getLogger(__name__)

# fairseq's Dictionary() starts with these four symbols, in this order (bos, pad, eos, unk).
FAIRSEQ_SPECIAL_SYMBOLS = ("<s>", "<pad>", "</s>", "<unk>")


def read_fairseq_dictionary(path) -> list[str]:
    """Symbols of a fairseq ``Dictionary`` file (``dict.ltr.txt``: lines "SYMBOL COUNT"), index order.

    fairseq prepends ``<s>``, ``<pad>``, ``</s>``, ``<unk>`` (ids 0-3) to the file's symbols. A line may end with
    the flag ``#fairseq:overwrite``; overwriting one of the special symbols (which gives it a second id in fairseq)
    cannot be represented in a vocab.json and is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such dictionary file")
    symbols = list(FAIRSEQ_SPECIAL_SYMBOLS)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        overwrite = line.endswith(" #fairseq:overwrite")
        if overwrite:
            line = line[: -len(" #fairseq:overwrite")]
        symbol, _, count = line.rstrip().rpartition(" ")
        if not symbol or not count.lstrip("-").isdigit():
            raise ConversionError(f"{path}, line {number}: expected 'SYMBOL COUNT', got {line!r}")
        if symbol in symbols:
            raise ConversionError(f"{path}, line {number}: duplicate symbol {symbol!r}")
        symbols.append(symbol)
    return symbols


def vocabulary_from_fairseq(symbols: list[str]) -> dict[str, int]:
    """vocab.json contents (token -> id) for fairseq symbols in index order.

    fairseq's CTC blank is id 0, its ``<s>`` symbol (the wav2letter convention of ``Dictionary.bos()``); this
    package (like transformers) calls the blank ``pad_token`` and gives it id 0. So the NAMES of ids 0 and 1 are
    swapped (0 = "<pad>", 1 = "<s>") while every id, and with it every row of the CTC head, stays where it is.
    """
    if list(symbols[:2]) != ["<s>", "<pad>"]:
        raise ConversionError(f"a fairseq dictionary starts with <s>, <pad>; got {symbols[:2]}")
    names = ["<pad>", "<s>", *symbols[2:]]
    return {name: index for index, name in enumerate(names)}


def build_processor(vocabulary: dict[str, int], config, normalize: bool):
    """Feature extractor + CTC tokenizer for a converted CTC model."""
    from ..feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
    from ..processing_hf_wav2vec2 import HfWav2Vec2Processor
    from ..tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer

    if "|" not in vocabulary:
        logger.warning("the dictionary has no word delimiter '|': transcripts will have no spaces")
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file = Path(scratch) / "vocab.json"
        vocab_file.write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
        # the tokenizer's defaults are the names vocabulary_from_fairseq gives: <s>, <pad>, </s>, <unk> and "|"
        tokenizer = HfWav2Vec2CTCTokenizer(str(vocab_file))
    feature_extractor = HfWav2Vec2FeatureExtractor.for_config(config, do_normalize=normalize)
    return HfWav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer)
