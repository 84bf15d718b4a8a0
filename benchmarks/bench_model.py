"""Speed of this package's models against transformers' own, same weights, same machine, same run.

    python benchmarks/bench_model.py [--size base|tiny] [--seconds 10] [--batch 4] [--repeats 3] [--device cpu]

Measures (median of repeats, after a warm-up):
  * inference: ForCTC forward on a batch of `--seconds` clips (no grad);
  * pre-training step: ForPreTraining forward + backward with the same masks and distractors
    (transformers' numpy sampler is NOT timed; ours samples inside the model, which is timed).
Prints a Markdown table with the ratio transformers / ours (> 1 means we are faster).
"""

import argparse
import statistics
import tempfile
import time

import torch
import transformers

import hf_wav2vec2
from hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining

SIZES = {
    "base": dict(),
    "tiny": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
}


def timed(fn, repeats, device):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="base")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    no_dropout = dict(
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        feat_quantizer_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
    )
    hf_config = transformers.Wav2Vec2Config(
        **SIZES[args.size], **no_dropout, mask_time_prob=0.65, attn_implementation="sdpa"
    )
    x = torch.randn(args.batch, int(args.seconds * 16000), device=args.device, dtype=dtype)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        theirs = transformers.Wav2Vec2ForPreTraining(hf_config)
        theirs.save_pretrained(tmp)
        ours = HfWav2Vec2ForPreTraining.from_pretrained(tmp)
        theirs_ctc = transformers.Wav2Vec2ForCTC.from_pretrained(tmp, vocab_size=32)
        ours_ctc = HfWav2Vec2ForCTC.from_pretrained(tmp, vocab_size=32)
        ours_ctc.lm_head.load_state_dict(theirs_ctc.lm_head.state_dict())
    models = [m.to(args.device, dtype) for m in (theirs, ours, theirs_ctc, ours_ctc)]
    theirs, ours, theirs_ctc, ours_ctc = models

    with torch.no_grad():
        theirs_ctc.eval(), ours_ctc.eval()
        t_inf = timed(lambda: theirs_ctc(x).logits, args.repeats, args.device)
        o_inf = timed(lambda: ours_ctc(x).logits, args.repeats, args.device)
    rows.append(("ForCTC inference", t_inf, o_inf))

    frames = int(ours._get_feat_extract_output_lengths(x.shape[1]))
    mask = hf_wav2vec2.compute_mask_indices((args.batch, frames), 0.65, 10, 2, device=args.device)
    negatives = hf_wav2vec2.sample_negative_indices(mask, 100)
    theirs.train(), ours.train()

    def step(model, **kwargs):
        model.zero_grad(set_to_none=True)
        out = model(x, **kwargs)
        out.loss.backward()

    t_step = timed(
        lambda: step(theirs, mask_time_indices=mask, sampled_negative_indices=negatives), args.repeats, args.device
    )
    o_step = timed(lambda: step(ours), args.repeats, args.device)
    rows.append(("ForPreTraining step (fwd+bwd)", t_step, o_step))

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"\n{args.size} model, batch {args.batch} x {args.seconds:g} s, {args.dtype}, {device_name}, "
        f"torch {torch.__version__}, transformers {transformers.__version__}\n"
    )
    print("| what | transformers (s) | hf-wav2vec2 (s) | speed-up |")
    print("|---|---|---|---|")
    for name, t, o in rows:
        print(f"| {name} | {t:.3f} | {o:.3f} | {t / o:.2f}x |")


if __name__ == "__main__":
    main()
