"""Which encoder leaves the blank-only CTC plateau on the 10-minute asterisk split, and after how many updates.

    python benchmarks/ctc_plateau.py --data runs/main_job/data --inputs conv --model runs/main_job/pretrained \\
        --encoder pretrained [--steps 1000] [--lr 1e-3] [--batch_size 8] [--eval_every 100] [--threads 1]
    python benchmarks/ctc_plateau.py --data runs/main_job/data --inputs logmel --encoder random --pre_ln
    python benchmarks/ctc_plateau.py --data runs/main_job/data --inputs logmel --encoder bilstm
    python benchmarks/ctc_plateau.py --data runs/main_job/data --inputs logmel --encoder bilstm \\
        --steps 5000 --minutes 34 --json runs/baseline.jsonl  # at most 34 min (the warm-up spans 10 % of --steps)

A diagnostic, not a recipe: it isolates the transformer from the feature encoder by training on *fixed* inputs
computed once per clip, which makes an update several times cheaper than fine-tuning on waveforms.

``--inputs``:
  * ``conv``: the output of ``--model``'s conv feature encoder (frozen in fine-tuning anyway, so this is exact);
  * ``logmel``: 80 log-mel bands (25 ms window, 10 ms hop), two frames stacked to the conv stack's 50 Hz rate.

``--encoder``:
  * ``pretrained``: ``--model``'s feature projection and transformer (plus a new CTC head);
  * ``random``: the same architecture as ``--model``'s config, from random weights; ``--pre_ln`` / ``--post_ln``
    override its layer-norm order (fairseq ``layer_norm_first``);
  * ``bilstm``: a reference outside wav2vec 2.0: conv (stride 1) + 2-layer BiLSTM of 256 per direction.

Every ``--eval_every`` updates it prints (and ``main`` returns) the mean training CTC loss (per target character)
and the greedy CER on every 4th training clip and on the held-out test split (WER too). A model on the plateau emits
only blanks (CER 1.000). Batches are ``--batch_size`` clips of similar length; AdamW (0.9, 0.98), 10 % linear
warm-up then constant lr, gradient norm clipped to 1, no dropout unless ``--dropout``, no masking unless
``--mask_time_prob``. ``--minutes`` stops training once that much wall-clock time has passed since the start
(featurizing and the evaluations included) and evaluates the last update.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

try:
    import hf_wav2vec2  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForCTC
from hf_wav2vec2.audio import load_audio
from hf_wav2vec2.decoding.ctc import GreedyCTCDecoder
from hf_wav2vec2.training.ctc_data import read_metadata
from hf_wav2vec2.training.metrics import cer, wer
from hf_wav2vec2.training.vocab import build_vocab, normalize_text

SR = 16000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="exported asterisk workdir with train/ and test/ folders")
    p.add_argument("--inputs", choices=("conv", "logmel"), default="conv")
    p.add_argument("--encoder", choices=("pretrained", "random", "bilstm"), default="pretrained")
    p.add_argument("--model", help="pre-trained model directory (conv inputs, pretrained or random encoders)")
    ln = p.add_mutually_exclusive_group()
    ln.add_argument("--pre_ln", action="store_true", help="random encoder: pre-LN layers")
    ln.add_argument("--post_ln", action="store_true", help="random encoder: post-LN layers")
    p.add_argument("--steps", type=int, default=1000, help="updates (the warm-up is a tenth of them)")
    p.add_argument(
        "--minutes",
        type=float,
        help="wall-clock budget from the start, featurizing included: training stops after the update that spends "
        "it, then evaluates once more (a baseline at another model's budget)",
    )
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--mask_time_prob", type=float, default=0.0)
    p.add_argument("--eval_every", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="append the evaluations to this JSON-lines file")
    args = p.parse_args(argv)
    if args.minutes is not None and args.minutes <= 0:
        p.error(f"--minutes must be positive, got {args.minutes}")
    if args.encoder != "bilstm" and not args.model:
        p.error(f"--encoder {args.encoder} needs --model (its config, and its weights when pretrained)")
    if args.inputs == "conv" and not args.model:
        p.error("--inputs conv needs --model (whose conv stack computes them)")
    if (args.pre_ln or args.post_ln) and args.encoder != "random":
        p.error("--pre_ln/--post_ln apply to --encoder random only")
    return args


def log_mel(audio: np.ndarray, n_mels: int = 80) -> torch.Tensor:
    """(T, 2 * n_mels) log-mel frames at 50 Hz, normalized per clip."""
    n_fft, hop = 400, 160
    power = torch.stft(torch.from_numpy(audio), n_fft, hop, window=torch.hann_window(n_fft), return_complex=True)
    power = power.abs() ** 2  # (freq, T)
    hz = np.linspace(0, SR / 2, n_fft // 2 + 1)
    mel = np.linspace(0, 2595 * np.log10(1 + SR / 2 / 700), n_mels + 2)
    edges = 700 * (10 ** (mel / 2595) - 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    triangles = np.clip(np.minimum((hz - lo) / (mid - lo), (hi - hz) / (hi - mid)), 0, None)
    bank = torch.tensor(triangles, dtype=torch.float32)
    frames = torch.log(bank @ power + 1e-6).T  # (T, n_mels)
    frames = (frames - frames.mean(0)) / (frames.std(0) + 1e-5)
    usable = len(frames) // 2 * 2
    return frames[:usable].reshape(usable // 2, 2 * n_mels)


def featurize(items, args, vocab, conv):
    out = []
    for path, text in items:
        audio = load_audio(path, SR)
        audio = (audio - audio.mean()) / (audio.std() + 1e-7)
        if args.inputs == "conv":
            with torch.no_grad():
                feats = conv(torch.from_numpy(audio)[None])[0].T.contiguous()  # (T, C)
        else:
            feats = log_mel(audio)
        norm = normalize_text(text).replace(" ", "|")
        out.append((feats, torch.tensor([vocab.get(c, vocab["<unk>"]) for c in norm]), normalize_text(text)))
    return out


class BiLSTM(nn.Module):
    def __init__(self, dim_in, vocab_size, hidden=256):
        super().__init__()
        self.conv = nn.Conv1d(dim_in, hidden, 3, padding=1)
        self.rnn = nn.LSTM(hidden, hidden, 2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * hidden, vocab_size)

    def forward(self, x, frame_mask):  # (B, T, C) -> (B, T, V)
        x = F.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        return self.head(self.rnn(x)[0])


class Wav2Vec2OnFeatures(nn.Module):
    """wav2vec 2.0 from its feature projection on: projection, time masks, transformer, CTC head."""

    def __init__(self, ctc: HfWav2Vec2ForCTC):
        super().__init__()
        self.ctc = ctc

    def forward(self, x, frame_mask):
        w2v = self.ctc.wav2vec2
        hidden, _ = w2v.feature_projection(x)
        hidden = w2v.mask_hidden_states(hidden, None, frame_mask)
        last, _, _ = w2v.encoder(hidden, frame_mask)
        return self.ctc.lm_head(self.ctc.dropout(last))


def build_model(args, vocab, dim_in):
    if args.encoder == "bilstm":
        return BiLSTM(dim_in, len(vocab))
    overrides = dict(
        vocab_size=len(vocab),
        pad_token_id=vocab["<pad>"],
        layerdrop=0.0,
        mask_time_prob=args.mask_time_prob,
        mask_time_min_masks=0,
        hidden_dropout=args.dropout,
        attention_dropout=args.dropout,
        feat_proj_dropout=args.dropout,
        activation_dropout=0.0,
        final_dropout=0.0,
    )
    if args.encoder == "pretrained":
        if args.inputs != "conv":
            raise SystemExit("--encoder pretrained expects the conv features it was pre-trained on (--inputs conv)")
        # a fine-tuned --model's head has another vocabulary: it is replaced like a pre-trained model's missing one
        ctc = HfWav2Vec2ForCTC.from_pretrained(args.model, ignore_mismatched_sizes=True, **overrides)
        return Wav2Vec2OnFeatures(ctc)
    config = HfWav2Vec2Config.from_pretrained(args.model)
    for key, value in overrides.items():
        setattr(config, key, value)
    if args.pre_ln or args.post_ln:
        config.do_stable_layer_norm = args.pre_ln
    if args.inputs == "logmel":
        config.conv_dim = (*config.conv_dim[:-1], dim_in)  # the projection's input width
    return Wav2Vec2OnFeatures(HfWav2Vec2ForCTC(config))


def collate(batch):
    frames = max(len(f) for f, _, _ in batch)
    x = torch.zeros(len(batch), frames, batch[0][0].shape[1])
    mask = torch.zeros(len(batch), frames, dtype=torch.bool)
    labels = torch.full((len(batch), max(len(y) for _, y, _ in batch)), -100)
    for i, (f, y, _) in enumerate(batch):
        x[i, : len(f)], mask[i, : len(f)], labels[i, : len(y)] = f, True, y
    return x, mask, labels


def ctc_loss(logits, mask, labels, blank):
    log_probs = F.log_softmax(logits, -1, dtype=torch.float32).transpose(0, 1)  # (T, B, V)
    valid = labels >= 0
    return F.ctc_loss(log_probs, labels[valid], mask.sum(-1), valid.sum(-1), blank=blank, zero_infinity=True)


def evaluate(model, items, decoder):
    model.eval()
    hyps, refs = [], []
    with torch.no_grad():
        for start in range(0, len(items), 16):
            batch = items[start : start + 16]
            x, mask, _ = collate(batch)
            logits = model(x, mask)
            hyps += decoder.decode_batch(logits, mask.sum(-1).tolist())
            refs += [text for _, _, text in batch]
    model.train()
    return cer(refs, hyps), wer(refs, hyps), hyps[:2]


def report(model, train, test, decoder, update, loss, start):
    """Evaluate on every 4th training clip and on the test split; print one line and return it as a dict."""
    train_cer, _, _ = evaluate(model, train[::4], decoder)
    test_cer, test_wer, examples = evaluate(model, test, decoder)
    seconds = time.time() - start
    print(
        f"update {update}: loss {loss:.3f}  train CER {train_cer:.3f}  test CER {test_cer:.3f}  "
        f"test WER {test_wer:.3f}  ({seconds:.0f} s)  {examples}",
        flush=True,
    )
    return dict(update=update, loss=loss, train_cer=train_cer, test_cer=test_cer, test_wer=test_wer, seconds=seconds)


def main(argv=None):
    args = parse_args(argv)
    began = time.time()  # --minutes counts featurizing too: it is part of the baseline's wall-clock cost
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    train_items, test_items = (
        [(row["audio"], row["text"]) for row in read_metadata(data / split / "metadata.csv")]
        for split in ("train", "test")
    )
    vocab = build_vocab([text for _, text in train_items])
    conv = None
    if args.inputs == "conv":
        model = HfWav2Vec2ForCTC.from_pretrained(args.model, vocab_size=len(vocab), ignore_mismatched_sizes=True)
        conv = model.wav2vec2.feature_extractor.eval()
    train, test = featurize(train_items, args, vocab, conv), featurize(test_items, args, vocab, conv)
    model = build_model(args, vocab, train[0][0].shape[1])
    model.train()
    decoder = GreedyCTCDecoder(vocab)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.0)
    warmup = max(1, args.steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    by_length = sorted(range(len(train)), key=lambda i: len(train[i][0]))
    print(
        f"{args.inputs} inputs ({train[0][0].shape[1]} dims), {args.encoder} encoder, {len(train)} train / "
        f"{len(test)} test clips, {sum(p.numel() for p in model.parameters() if p.requires_grad):,} parameters"
    )
    start, total, history = time.time(), 0.0, []
    deadline = began + 60 * args.minutes if args.minutes else float("inf")
    for step in range(args.steps):
        first = random.randrange(max(1, len(by_length) - args.batch_size + 1))
        x, mask, labels = collate([train[i] for i in by_length[first : first + args.batch_size]])
        loss = ctc_loss(model(x, mask), mask, labels, vocab["<pad>"])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        total += loss.item()
        out_of_time = time.time() >= deadline
        if (step + 1) % args.eval_every == 0 or out_of_time:
            history.append(report(model, train, test, decoder, step + 1, total / ((step % args.eval_every) + 1), start))
            total = 0.0
        if out_of_time:
            print(f"--minutes {args.minutes:g} spent after {step + 1} of {args.steps} updates", flush=True)
            break
    if args.json:
        with open(args.json, "a") as f:  # appended: several runs share one record
            for row in history:
                f.write(json.dumps({**row, "args": vars(args)}) + "\n")
    return history


if __name__ == "__main__":
    main()
