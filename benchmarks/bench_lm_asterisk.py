"""Word error rate gain of n-gram LM beam search on the held-out sentences of the Debian asterisk prompts.

    python benchmarks/bench_lm_asterisk.py --model runs/main_job/ctc --data runs/main_job/data \\
        [--order 3] [--lm_text train+pretrain] [--alphas 0.3 0.5 1.0] [--betas 0 1 2] [--beam_size 50] \\
        [--output benchmarks/results/lm_asterisk_cpu.md]

``--model`` is a fine-tuned CTC model directory; ``--data`` an exported asterisk workdir (``train/``, ``test/`` and
usually ``pretrain/`` folders with ``metadata.csv``, as ``hf_wav2vec2.corpora.asterisk.export_all`` writes them; it is
exported there when ``train/`` or ``test/`` is missing). The steps:

1. **LM text**: the normalized transcripts of every prompt outside the test split -- ``train`` (the 265 labeled
   fine-tuning prompts) or ``train+pretrain`` (also the rest of the pre-training prompts that have a reliable
   transcript). They come from ``DATA/train`` and ``DATA/pretrain``'s ``metadata.csv``; without ``DATA/pretrain``
   from the corpus itself (``asterisk.split_prompts``, no audio exported). **No test sentence may be in the LM
   text**: the script refuses to run when one is (the split groups prompts by sentence, so this never happens with
   the fixed split; the check guards against a hand-edited or mismatched workdir).
2. **LM**: a ``--order``-gram interpolated modified Kneser-Ney model written as ARPA by the pure-Python
   :func:`hf_wav2vec2.decoding.build_arpa`, its words cased like the model's vocabulary (upper case for the
   fine-tuned models).
3. **One model pass per split**: the model is loaded once (:func:`hf_wav2vec2.asr_pipeline`) with a decoder that
   keeps each clip's logits and decodes them greedily (best path), through :func:`hf_wav2vec2.evaluate_model`: that
   is the greedy row. Every (alpha, beta) point then runs ``CTCBeamSearchDecoder`` (flashlight-text, lexicon-free,
   ``--beam_size``) on the kept logits -- exactly the logits the pipeline's own LM decoding would see -- and is
   scored the same way (jiwer, case-folded).
4. **Honest selection**: the grid also runs on the *train* split, and the (alpha, beta) with the lowest train WER is
   the reported LM result (ties: lower train CER, then grid order). The best point on the test split is shown too,
   labeled as an oracle (it is tuned on the test set, so it is optimistic).

Prints a Markdown table (decoder | alpha | beta | WER | CER | seconds, on the test split), the grid, and the facts
needed to read them (command line, model, LM text size, OOV rate of the test words), and writes it to ``--output``
when given.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import hf_wav2vec2  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_name

from hf_wav2vec2.corpora import asterisk

SPLITS = ("train", "test")
LM_TEXTS = ("train", "train+pretrain")


class LMTextLeak(ValueError):
    """A test sentence is in the LM text: the LM would have seen the answers."""


# ----------------------------------------------------------------------------------------------- data


@dataclass
class Split:
    """Audio files and references of one exported split."""

    name: str
    files: list[str]
    texts: list[str]
    seconds: float

    @property
    def words(self) -> int:
        return sum(len(t.split()) for t in self.texts)


def read_metadata(folder: Path) -> list[dict]:
    """Rows of ``folder/metadata.csv`` (``file``, ``text``, ``duration``), ``file`` resolved against the folder."""
    with (folder / "metadata.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if not row.get("file"):
            raise ValueError(f"{folder / 'metadata.csv'}: a row names no file")
        row["path"] = str(folder / row["file"])
        row["text"] = " ".join((row.get("text") or "").split())
    return rows


def ensure_exported(data: Path) -> None:
    """Export the corpus into ``data`` when its train or test folder is missing."""
    if all((data / name / "metadata.csv").is_file() for name in SPLITS):
        return
    if not asterisk.is_installed():
        raise SystemExit(
            f"{data}: no exported train/ and test/ folders, and the asterisk prompts are not installed to export them "
            f"(apt-get install {asterisk.DEBIAN_PACKAGE})"
        )
    print(f"exporting the asterisk prompts into {data} ...", file=sys.stderr, flush=True)
    asterisk.export_all(data)


def load_split(data: Path, name: str, max_examples: int | None = None) -> Split:
    rows = read_metadata(data / name)
    unlabeled = [row["file"] for row in rows if not row["text"]]
    if unlabeled:
        raise ValueError(
            f"{data / name / 'metadata.csv'}: {len(unlabeled)} rows have no transcript "
            f"(e.g. {unlabeled[0]}): WER needs a reference for every clip"
        )
    rows = rows[:max_examples] if max_examples else rows
    seconds = 0.0
    for row in rows:
        try:
            seconds += float(row.get("duration") or 0.0)
        except ValueError:
            pass
    return Split(name, [row["path"] for row in rows], [row["text"] for row in rows], seconds)


def lm_sentences(data: Path, lm_text: str) -> tuple[list[str], str, int]:
    """(LM sentences, where they came from, prompts skipped for having no reliable transcript).

    One sentence per prompt of the chosen splits (a prompt in both train and pretrain counts once); prompts whose
    transcript is unreliable (empty ``text``) are skipped.
    """
    names = ["train"] if lm_text == "train" else ["train", "pretrain"]
    texts: dict[str, str] = {}
    sources = []
    for name in names:
        folder = data / name
        if (folder / "metadata.csv").is_file():
            for row in read_metadata(folder):
                texts.setdefault(row["file"], row["text"])
            sources.append(f"`{folder / 'metadata.csv'}`")
        elif name == "pretrain" and asterisk.is_installed():
            splits = asterisk.split_prompts(asterisk.load_prompts())
            for prompt in splits["pretrain"]:
                texts.setdefault(f"{prompt.name}.wav", prompt.text or "")
            sources.append("the corpus' pretrain split (`asterisk.split_prompts`, transcripts only)")
        else:
            raise SystemExit(
                f"{folder}: no metadata.csv for the LM text --lm_text {lm_text}"
                + (
                    f" (and the asterisk prompts are not installed: apt-get install {asterisk.DEBIAN_PACKAGE})"
                    if name == "pretrain"
                    else ""
                )
            )
    sentences = [text for text in texts.values() if text]
    return sentences, " + ".join(sources), len(texts) - len(sentences)


def _key(sentence: str) -> str:
    return " ".join(sentence.split()).upper()


def check_no_test_sentence(test_texts: list[str], lm_text: list[str]) -> dict:
    """Refuse (:class:`LMTextLeak`) when a test sentence is an LM sentence (compared case-folded, spaces collapsed).

    Returns ``{"test_sentences": n, "contained": k}``: ``k`` test sentences occur as a word sequence *inside* a
    longer LM sentence -- allowed (prompts share phrases, and a one-word test sentence may well occur inside
    others), but worth knowing.
    """
    lm_keys = {_key(s) for s in lm_text}
    test_keys = sorted({_key(s) for s in test_texts})
    leaked = [s for s in test_keys if s in lm_keys]
    if leaked:
        raise LMTextLeak(
            f"{len(leaked)} of the {len(test_keys)} test sentences are in the LM text (e.g. {leaked[0]!r}): the LM "
            "must never see the test split"
        )
    padded = [f" {s} " for s in lm_keys]
    contained = sum(any(f" {s} " in line for line in padded) for s in test_keys)
    return {"test_sentences": len(test_keys), "contained": contained}


def vocabulary_case(vocab: dict) -> str | None:
    """``"upper"`` / ``"lower"`` when the model's letters are all one case, else None (text left as it is)."""
    letters = [t for t in vocab if len(t) == 1 and t.isalpha()]
    upper = any(c.isupper() for c in letters)
    lower = any(c.islower() for c in letters)
    if upper and not lower:
        return "upper"
    if lower and not upper:
        return "lower"
    return None


def apply_case(text: str, case: str | None) -> str:
    return text.upper() if case == "upper" else text.lower() if case == "lower" else text


# ----------------------------------------------------------------------------------------------- decoding


class LogitsRecorder:
    """Pipeline decoder that keeps each clip's (frames, vocab) logits and returns the greedy (best path) hypothesis."""

    def __init__(self) -> None:
        self.greedy = None
        self.logits: list = []

    def decode_hypothesis(self, logits):
        self.logits.append(logits)
        return self.greedy.decode_hypothesis(logits)


def score(references: list[str], hypotheses: list[str]) -> tuple[float, float, list[str]]:
    """(WER, CER, normalized hypotheses) as :func:`hf_wav2vec2.evaluate_model` computes them (case-folded,
    whitespace collapsed)."""
    import jiwer

    from hf_wav2vec2.transcribe import normalize_transcript

    refs = [normalize_transcript(r) for r in references]
    hyps = [normalize_transcript(h) for h in hypotheses]
    return float(jiwer.wer(refs, hyps)), float(jiwer.cer(refs, hyps)), hyps


def greedy_pass(pipe, recorder: LogitsRecorder, split: Split, batch_size: int) -> dict:
    """Greedy WER/CER of ``split`` through evaluate_model; keeps the logits for the beam search."""
    from hf_wav2vec2 import evaluate_model

    recorder.logits = []
    start = time.perf_counter()
    result = evaluate_model(pipe, split.files, split.texts, batch_size=batch_size)
    seconds = time.perf_counter() - start
    if result.failed:
        raise RuntimeError(
            f"{len(result.failed)} {split.name} clips could not be transcribed, e.g. "
            f"{next(iter(result.failed.values()))}"
        )
    if len(recorder.logits) != len(split.files):
        raise RuntimeError(f"kept {len(recorder.logits)} logits for {len(split.files)} {split.name} clips")
    logits, recorder.logits = recorder.logits, []
    return {"wer": result.wer, "cer": result.cer, "seconds": seconds, "hypotheses": result.hypotheses, "logits": logits}


def lm_pass(decoder, split: Split, logits: list) -> dict:
    start = time.perf_counter()
    hypotheses = [decoder.decode(x) for x in logits]
    seconds = time.perf_counter() - start
    wer, cer, hypotheses = score(split.texts, hypotheses)
    return {"wer": wer, "cer": cer, "seconds": seconds, "hypotheses": hypotheses}


# ----------------------------------------------------------------------------------------------- report


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _num(x: float) -> str:
    return f"{x:g}"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="fine-tuned CTC model directory")
    parser.add_argument(
        "--data",
        default="data/asterisk",
        help="exported asterisk workdir with train/ and test/ (exported there when missing)",
    )
    parser.add_argument("--order", type=int, default=3, help="n-gram order of the LM")
    parser.add_argument(
        "--lm_text",
        default="train+pretrain",
        choices=LM_TEXTS,
        help="prompts whose transcripts make the LM text (never the test split)",
    )
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.3, 0.5, 1.0], help="LM weights to try")
    parser.add_argument("--betas", type=float, nargs="+", default=[0.0, 1.0, 2.0], help="word bonuses to try")
    parser.add_argument("--beam_size", type=int, default=50)
    parser.add_argument("--batch_size", type=int, default=1, help="clips per model call")
    parser.add_argument("--device", default=None, help="cpu (default), cuda, ...")
    parser.add_argument(
        "--max_examples",
        type=int,
        default=None,
        help="only the first N clips of each split (a smoke run; not a result)",
    )
    parser.add_argument("--lm_dir", default=None, help="keep the LM text and ARPA file here (default: a temp dir)")
    parser.add_argument("--output", default=None, help="write the Markdown report to this file")
    args = parser.parse_args(argv)
    if args.order < 2:
        parser.error("--order must be at least 2 (KenLM loads nothing smaller)")
    if args.beam_size < 1:
        parser.error("--beam_size must be at least 1")
    return args


@dataclass
class LMText:
    """The LM's sentences cased like the vocabulary, and how the test words relate to them."""

    lines: list[str]
    source: str
    skipped: int
    spellable: int
    test_words: list[str]

    @property
    def words(self) -> list[str]:
        return [w for line in self.lines for w in line.split()]

    @property
    def vocabulary(self) -> set[str]:
        return set(self.words)

    @property
    def oov_tokens(self) -> int:
        return sum(w not in self.vocabulary for w in self.test_words)

    @property
    def oov_types(self) -> set[str]:
        return {w for w in self.test_words if w not in self.vocabulary}


@dataclass
class Outcome:
    """Everything the report says: inputs, the LM, the greedy passes and the alpha x beta grid."""

    args: argparse.Namespace
    argv: list[str]
    splits: dict
    leak: dict
    lm: LMText
    stats: object
    model_line: str
    greedy: dict
    grid: list[dict]

    @property
    def chosen(self) -> dict:
        return min(self.grid, key=lambda p: (p["train"]["wer"], p["train"]["cer"]))

    @property
    def oracle(self) -> dict:
        return min(self.grid, key=lambda p: (p["test"]["wer"], p["test"]["cer"]))


def prepare_lm_text(args, data: Path) -> tuple[list[str], str, int, dict, Split]:
    """The LM sentences and the leak check, before anything slow; raises LMTextLeak for a test sentence."""
    ensure_exported(data)
    full_test = load_split(data, "test")  # all test sentences are checked, even with --max_examples
    sentences, lm_source, skipped = lm_sentences(data, args.lm_text)
    if not sentences:
        raise SystemExit(f"the LM text ({lm_source}) has no sentences")
    return sentences, lm_source, skipped, check_no_test_sentence(full_test.texts, sentences), full_test


def model_description(args, pipe, vocab: dict, case: str | None) -> str:
    """The report's line about the model, the device and the software."""
    import torch
    import transformers

    import hf_wav2vec2

    device = args.device or "cpu"
    machine = (
        f" ({cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch threads)"
        if device == "cpu"
        else f" (torch {torch.__version__})"
    )
    return (
        f"Model: `{args.model}` ({type(pipe.model).__name__}, {len(vocab)}-token vocabulary, "
        f"{case or 'mixed'}-case letters). Device: {device}{machine}, transformers {transformers.__version__}, "
        f"hf-wav2vec2 {hf_wav2vec2.__version__}."
    )


def decode_everything(args, pipe, recorder, splits: dict, arpa: Path) -> tuple[dict, list[dict]]:
    """Greedy: one model pass per split, logits kept; then the LM grid on both splits from those logits."""
    from hf_wav2vec2.decoding import CTCBeamSearchDecoder

    greedy, logits = {}, {}
    for name in ("test", "train"):
        print(f"[greedy] {name}: {len(splits[name].files)} clips ...", file=sys.stderr, flush=True)
        result = greedy_pass(pipe, recorder, splits[name], args.batch_size)
        logits[name] = result.pop("logits")
        greedy[name] = result
        print(
            f"[greedy] {name}: WER {_pct(result['wer'])} CER {_pct(result['cer'])} ({result['seconds']:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    grid = []
    for alpha in args.alphas:
        for beta in args.betas:
            decoder = CTCBeamSearchDecoder.from_tokenizer(
                pipe.tokenizer, arpa, alpha=alpha, beta=beta, beam_size=args.beam_size
            )
            point = {"alpha": alpha, "beta": beta}
            for name in ("train", "test"):
                point[name] = lm_pass(decoder, splits[name], logits[name])
            grid.append(point)
            seconds = point["train"]["seconds"] + point["test"]["seconds"]
            print(
                f"[lm] alpha={_num(alpha)} beta={_num(beta)}: train WER {_pct(point['train']['wer'])}, "
                f"test WER {_pct(point['test']['wer'])} ({seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    return greedy, grid


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    data = Path(args.data)
    sentences, lm_source, skipped, leak, full_test = prepare_lm_text(args, data)
    splits = {name: load_split(data, name, args.max_examples) for name in SPLITS}

    import transformers

    from hf_wav2vec2 import asr_pipeline
    from hf_wav2vec2.decoding import (
        FLASHLIGHT_INSTALL_HINT,
        CTCVocabulary,
        GreedyCTCDecoder,
        build_arpa,
        is_flashlight_available,
    )

    if not is_flashlight_available():
        raise SystemExit(FLASHLIGHT_INSTALL_HINT)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    # one model load; the recorder keeps the logits of every clip
    recorder = LogitsRecorder()
    pipe = asr_pipeline(args.model, decoder=recorder, device=args.device)
    recorder.greedy = GreedyCTCDecoder.from_tokenizer(pipe.tokenizer)
    vocab = pipe.tokenizer.get_vocab()
    case = vocabulary_case(vocab)
    ctc_vocab = CTCVocabulary.from_tokenizer(pipe.tokenizer)
    lm_lines = [apply_case(s, case) for s in sentences]  # the LM, cased like the vocabulary
    lm_vocabulary = {w for line in lm_lines for w in line.split()}
    lm = LMText(
        lm_lines,
        lm_source,
        skipped,
        spellable=sum(ctc_vocab.spell(w) is not None for w in lm_vocabulary),
        test_words=[apply_case(w, case) for t in full_test.texts for w in t.split()],
    )

    with tempfile.TemporaryDirectory() as tmp:
        lm_dir = Path(args.lm_dir) if args.lm_dir else Path(tmp)
        lm_dir.mkdir(parents=True, exist_ok=True)
        (lm_dir / "lm.txt").write_text("\n".join(lm_lines) + "\n", encoding="utf-8")
        arpa = lm_dir / f"lm.{args.order}gram.arpa"
        stats = build_arpa(lm_lines, arpa, order=args.order)
        greedy, grid = decode_everything(args, pipe, recorder, splits, arpa)

    outcome = Outcome(args, argv, splits, leak, lm, stats, model_description(args, pipe, vocab, case), greedy, grid)
    report = "\n".join(report_lines(outcome)) + "\n"
    print(report)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(report, encoding="utf-8")
    return {
        "greedy": greedy,
        "grid": grid,
        "chosen": outcome.chosen,
        "oracle": outcome.oracle,
        "lm": {
            "sentences": len(lm_lines),
            "words": len(lm.words),
            "vocabulary": len(lm.vocabulary),
            "counts": stats.counts,
            "case": case,
            "arpa": str(arpa) if args.lm_dir else None,
        },
        "oov_rate": lm.oov_tokens / max(1, len(lm.test_words)),
        "leak_check": leak,
        "report": report,
    }


def report_lines(run: Outcome) -> list[str]:
    """The Markdown report: what ran on what, then the test table and the grid."""
    return [*setup_lines(run), *result_lines(run)]


def setup_lines(run: Outcome) -> list[str]:
    """Command, model, data, LM and leak check, OOV rate, decoder."""
    args, lm, leak = run.args, run.lm, run.leak
    test, train = run.splits["test"], run.splits["train"]
    counts = ", ".join(f"{n}-grams: {c}" for n, c in enumerate(run.stats.counts, start=1))
    distinct_test = set(lm.test_words)
    lines = [
        "# n-gram LM beam search on the asterisk prompts' held-out sentences",
        "",
        "Command:",
        "",
        f"    python benchmarks/bench_lm_asterisk.py {shlex.join(run.argv)}",
        "",
        run.model_line,
        "",
        f"Test split: {len(test.files)} clips, {test.seconds:.1f} s, {test.words} words -- sentences never heard in "
        f"fine-tuning. Train split (only used to choose alpha and beta): {len(train.files)} clips, "
        f"{train.seconds:.1f} s, {train.words} words. Data: `{Path(args.data)}`.",
    ]
    if args.max_examples:
        lines += [
            "",
            f"**Smoke run: only the first {args.max_examples} clips of each split (--max_examples); not a result.**",
        ]
    return lines + [
        "",
        f"LM: {args.order}-gram interpolated modified Kneser-Ney (`hf_wav2vec2.decoding.build_arpa`), {counts}. "
        f"Text (`--lm_text {args.lm_text}`): {len(lm.lines)} sentences, {len(lm.words)} words, "
        f"{len(lm.vocabulary)} distinct words, from {lm.source}"
        + (f"; {lm.skipped} prompts without a reliable transcript skipped" if lm.skipped else "")
        + f". {lm.spellable} of {len(lm.vocabulary)} LM words can be spelled with the model's vocabulary.",
        "",
        f"**Test sentences in the LM text: none** (checked for all {leak['test_sentences']} distinct test sentences, "
        f"case-folded; the script refuses to run otherwise). {leak['contained']} of them occur as a word sequence "
        "inside a longer LM sentence (allowed: other prompts share phrases).",
        "",
        f"OOV rate of the test words w.r.t. the LM text: {_pct(lm.oov_tokens / max(1, len(lm.test_words)))} of "
        f"running words ({lm.oov_tokens} of {len(lm.test_words)}), "
        f"{_pct(len(lm.oov_types) / max(1, len(distinct_test)))} of distinct words ({len(lm.oov_types)} of "
        f"{len(distinct_test)}).",
        "",
        f"Beam search: flashlight-text lexicon-free `CTCBeamSearchDecoder`, beam size {args.beam_size}; alpha weighs "
        "the natural-log LM probability, beta is a per-word bonus. Greedy = best path of the same logits.",
    ]


def result_lines(run: Outcome) -> list[str]:
    """The test-split table (greedy, chosen, oracle), the gain, how to read it, and the whole grid."""
    greedy, chosen, oracle = run.greedy, run.chosen, run.oracle
    gain = greedy["test"]["wer"] - chosen["test"]["wer"]
    relative = gain / greedy["test"]["wer"] if greedy["test"]["wer"] else 0.0
    lines = [
        "",
        "## Test split",
        "",
        "| decoder | alpha | beta | WER | CER | seconds |",
        "|---|---|---|---|---|---|",
        f"| greedy | - | - | {_pct(greedy['test']['wer'])} | {_pct(greedy['test']['cer'])} | "
        f"{greedy['test']['seconds']:.1f} |",
        f"| LM (weights chosen on train) | {_num(chosen['alpha'])} | {_num(chosen['beta'])} | "
        f"{_pct(chosen['test']['wer'])} | {_pct(chosen['test']['cer'])} | {chosen['test']['seconds']:.1f} |",
        f"| LM oracle (best on test: tuned on the test set, optimistic) | {_num(oracle['alpha'])} | "
        f"{_num(oracle['beta'])} | {_pct(oracle['test']['wer'])} | {_pct(oracle['test']['cer'])} | "
        f"{oracle['test']['seconds']:.1f} |",
        "",
        f"WER gain of the LM (weights chosen on train): {100 * gain:+.1f} points absolute "
        f"({100 * relative:+.1f}% relative; positive = the LM helps).",
        "",
        "Seconds: the greedy row is the model's forward pass over the test split plus best-path decoding (the pass "
        "is shared: the LM rows reuse its logits); the LM rows are the beam search alone.",
        "",
        "Reading: alpha and beta are chosen on the train split (lowest train WER; ties: lower train CER, then grid "
        "order), the only labeled data besides the test set. It is not a clean held-out set: the LM has seen its "
        "sentences (which pushes towards a larger alpha) and the model was fine-tuned on its audio (greedy is "
        "already better there, which pushes towards a smaller one). The gap between the chosen row and the oracle "
        "row shows what choosing on train costs.",
        "",
        "## Grid (alpha x beta)",
        "",
        "| alpha | beta | train WER | test WER | test CER | test seconds |",
        "|---|---|---|---|---|---|",
        f"| greedy | - | {_pct(greedy['train']['wer'])} | {_pct(greedy['test']['wer'])} | "
        f"{_pct(greedy['test']['cer'])} | {greedy['test']['seconds']:.1f} |",
    ]
    for point in run.grid:
        mark = " (chosen)" if point is chosen else ""
        lines.append(
            f"| {_num(point['alpha'])} | {_num(point['beta'])}{mark} | {_pct(point['train']['wer'])} | "
            f"{_pct(point['test']['wer'])} | {_pct(point['test']['cer'])} | {point['test']['seconds']:.1f} |"
        )
    return lines


if __name__ == "__main__":
    try:
        main()
    except LMTextLeak as error:
        sys.exit(f"bench_lm_asterisk: {error}")
