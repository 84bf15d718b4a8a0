"""The README's code, run as written: its Python snippets in order, and its shell commands.

Hub ids in the README (``facebook/wav2vec2-base-960h``, ``facebook/wav2vec2-base``) are local folders of the same
name holding tiny random transformers-format models, so ``from_pretrained("facebook/...")`` loads them with no
network (HF_HUB_OFFLINE=1). The files the snippets name (``speech.flac``, ``a.wav``, ``corpus.txt`` ...) are made
first. The only edits to the README's text are in ``SHELL_EDITS``: sizes that would take hours (13000 updates,
``--preset base``), the placeholder ``/path/to/audio`` and multi-GPU launches, each with its reason.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

README = Path(__file__).resolve().parents[1] / "README.md"
REPO = README.parent

LETTERS = ["<pad>", "<s>", "</s>", "<unk>", "|", "A", "B", "C", "D", "E", "G", "L", "O", "R"]


def code_blocks(text: str, language: str) -> list[str]:
    """The fenced ```language blocks of a markdown text, in order."""
    return [m.group(1) for m in re.finditer(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)]


def section(text: str, heading: str) -> str:
    """The markdown from `heading` to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n")
    following = re.search(rf"^#{{1,{len(level)}}} ", text[start + len(heading) :], flags=re.M)
    return text[start : start + len(heading) + (following.start() if following else len(text))]


def tiny_transformers_config(**overrides):
    from transformers import Wav2Vec2Config

    values = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(16, 16, 16),
        conv_kernel=(10, 3, 3),
        conv_stride=(5, 2, 2),
        num_feat_extract_layers=3,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        codevector_dim=16,
        proj_codevector_dim=12,
        num_codevectors_per_group=8,
        num_codevector_groups=2,
        mask_time_length=2,
        vocab_size=len(LETTERS),
        pad_token_id=0,
    )
    values.update(overrides)
    return Wav2Vec2Config(**values)


def write_hub_like_models(root: Path) -> None:
    """``facebook/wav2vec2-base-960h`` (CTC + processor) and ``facebook/wav2vec2-base`` (pre-trained) as transformers
    saves them."""
    import torch
    from transformers import (
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2ForPreTraining,
        Wav2Vec2Processor,
    )

    torch.manual_seed(0)
    vocab = root / "vocab.json"
    vocab.write_text(json.dumps({token: i for i, token in enumerate(LETTERS)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(vocab))
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=False)
    Wav2Vec2ForCTC(tiny_transformers_config()).save_pretrained(root / "facebook/wav2vec2-base-960h")
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(
        root / "facebook/wav2vec2-base-960h"
    )
    Wav2Vec2ForPreTraining(tiny_transformers_config()).save_pretrained(root / "facebook/wav2vec2-base")
    extractor.save_pretrained(root / "facebook/wav2vec2-base")
    write_mms_like_model(root / "facebook/mms-1b-all")
    write_classifiers(root)


def write_classifiers(root: Path) -> None:
    """``superb/wav2vec2-base-superb-ks`` (keyword spotting) and ``anton-l/wav2vec2-base-superb-sv`` (x-vectors), as
    transformers saves them."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification, Wav2Vec2ForXVector

    torch.manual_seed(0)
    keywords = {i: word for i, word in enumerate(["yes", "no", "up", "down", "left", "right"])}
    config = tiny_transformers_config(
        num_labels=len(keywords),
        id2label=keywords,
        label2id={word: i for i, word in keywords.items()},
        classifier_proj_size=8,
    )
    Wav2Vec2ForSequenceClassification(config).save_pretrained(root / "superb/wav2vec2-base-superb-ks")
    Wav2Vec2FeatureExtractor().save_pretrained(root / "superb/wav2vec2-base-superb-ks")
    config = tiny_transformers_config(num_labels=4, tdnn_dim=(16, 16, 16, 16, 32), xvector_output_dim=16)
    Wav2Vec2ForXVector(config).save_pretrained(root / "anton-l/wav2vec2-base-superb-sv")
    Wav2Vec2FeatureExtractor().save_pretrained(root / "anton-l/wav2vec2-base-superb-sv")


def write_mms_like_model(folder: Path) -> None:
    """A tiny ``facebook/mms-1b-all``: pre-LN with adapters, one adapter file per language, a nested vocab.json."""
    import torch
    from safetensors.torch import save_file
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Processor

    model = Wav2Vec2ForCTC(
        tiny_transformers_config(
            adapter_attn_dim=8, do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True
        )
    )
    model.save_pretrained(folder)
    vocabs = {
        lang: {token: i for i, token in enumerate(LETTERS[: 10 + k])} for k, lang in enumerate(("eng", "spa", "fra"))
    }
    for lang, vocab in vocabs.items():
        state = {k: 0.1 * torch.randn(v.shape) for k, v in model._get_adapters().items() if not k.startswith("lm_head")}
        state["lm_head.weight"] = 0.1 * torch.randn(len(vocab), model.config.hidden_size)
        state["lm_head.bias"] = torch.zeros(len(vocab))
        save_file(state, str(folder / f"adapter.{lang}.safetensors"))
    (folder / "vocab.json").write_text(json.dumps(vocabs))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), target_lang="eng")
    Wav2Vec2Processor(feature_extractor=Wav2Vec2FeatureExtractor(), tokenizer=tokenizer).save_pretrained(folder)


def write_audio_files(root: Path) -> None:
    rng = np.random.default_rng(0)
    for name, seconds, rate in [
        ("speech.flac", 1.5, 44100),
        ("speech.wav", 1.5, 16000),
        ("a.wav", 1.0, 16000),
        ("b.wav", 0.7, 8000),
        ("hour.flac", 45.0, 16000),
    ]:
        sf.write(root / name, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
    (root / "corpus.txt").write_text("a dog barked\na cab rolled\nbad dog\nold cab\n" * 5)


def write_fairseq_checkpoint(root: Path) -> None:
    """``wav2vec_small_960h.pt`` and ``dict.ltr.txt``: a tiny fine-tuned fairseq checkpoint (the conversion tests'
    synthetic layout; the real one is 360 MB)."""
    import torch
    from test_convert_fairseq import BASE_FS, FINETUNING, cfg_checkpoint, random_fairseq_weights, write_dictionary
    from test_convert_fairseq import LETTERS as FAIRSEQ_LETTERS

    weights = random_fairseq_weights(BASE_FS, fine_tuned=True, vocab_size=4 + len(FAIRSEQ_LETTERS))
    torch.save(cfg_checkpoint(BASE_FS, weights, fine_tuned=True, **FINETUNING), root / "wav2vec_small_960h.pt")
    write_dictionary(root / "dict.ltr.txt")


def write_labeled_folder(folder: Path, texts: list[str], column: str = "text") -> None:
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    rows = [f"file,{column}"]
    for i, text in enumerate(texts):
        sf.write(folder / f"clip{i}.wav", (0.1 * rng.standard_normal(8000 + 800 * i)).astype(np.float32), 16000)
        rows.append(f"clip{i}.wav,{text}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")


PRELUDE = """
import numpy as np, soundfile as sf
audio = sf.read("a.wav", dtype="float32")[0]                     # the snippets' `audio`: 16 kHz samples
samples_8khz = sf.read("b.wav", dtype="float32")[0]
"""


def environment() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO))
    env.pop("CI", None)
    return env


def run(command: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        executable="/bin/bash",
    )
    assert result.returncode == 0, (
        f"`{command}` exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    (root / "examples").symlink_to(REPO / "examples")  # the README's commands run from the repository's root
    write_hub_like_models(root)
    write_audio_files(root)
    write_fairseq_checkpoint(root)
    write_labeled_folder(root / "data" / "train", ["A DOG", "A CAB", "BAD DOG", "OLD CAB"])
    write_labeled_folder(root / "data" / "test", ["A DOG", "BAD CAB"])
    write_labeled_folder(root / "data" / "kws" / "train", ["yes", "no", "yes", "no"], column="label")
    write_labeled_folder(root / "data" / "kws" / "test", ["yes", "no"], column="label")
    return root


def test_python_snippets_run_in_order(workdir):
    usage = section(README.read_text(), "## Usage")
    blocks = code_blocks(usage, "python")
    assert len(blocks) >= 2, "the README's Usage section lost its Python snippets"
    build_lm = [c for c in shell_commands(README.read_text()) if c.startswith("hf-wav2vec2 build-lm")]
    assert build_lm, "the README no longer shows how to build lm.arpa"
    run(build_lm[0], workdir)  # the snippets use the LM that the README's shell section builds
    script = PRELUDE + "\n".join(f"print('--- snippet {i}')\n{block}" for i, block in enumerate(blocks))
    (workdir / "readme_snippets.py").write_text(script)
    result = run(f"{sys.executable} readme_snippets.py", workdir, timeout=600)
    assert f"--- snippet {len(blocks) - 1}" in result.stdout
    # what the snippets promise: a saved model that loads in plain transformers
    check = textwrap.dedent("""
        import sys
        sys.modules["hf_wav2vec2"] = None   # plain transformers, this package blocked
        from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor, pipeline
        Wav2Vec2ForCTC.from_pretrained("my-model-for-transformers")
        Wav2Vec2Processor.from_pretrained("my-model-for-transformers")
        print(pipeline("automatic-speech-recognition", model="my-model-for-transformers")("a.wav"))
    """)
    run(f"{sys.executable} -c '{check}'", workdir)


# Edits to the README's shell commands, each with its reason (everything else runs as written).
SHELL_EDITS = {
    "--max_steps 13000": "--max_steps 2",  # 13000 updates take hours
    "--freeze_finetune_updates 10000": "--freeze_finetune_updates 1",
    "--num_train_epochs 5": "--max_steps 2",  # epochs of a real keyword corpus
    "--data /path/to/audio": "--data data/train",  # a placeholder
    "--preset base": "--preset tiny --max_updates 2 --max_tokens 64000 --min_sample_size 4000 --report_to none",
}
SKIPPED_LINES = (
    "bash scripts/setup.sh",  # the README's two commands: CI runs the second, tests/examples/test_main_job.py the first
    "accelerate launch --multi_gpu --num_processes 8",  # needs 8 GPUs
    "arecord ",  # needs a microphone: tests/test_streaming.py pipes audio into `transcribe - --stream`
    "examples/app.py",  # serves a page until stopped: tests/examples/test_app.py drives it in headless Chromium
)


def shell_commands(text: str) -> list[str]:
    """The README's shell commands in order: continuation lines joined, comments dropped."""
    commands = []
    for block in code_blocks(text, "bash"):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split("  #")[0].strip()
            if command and not command.startswith("#"):
                commands.append(" ".join(command.split()))
    return commands


def test_shell_commands_run(workdir):
    commands = shell_commands(README.read_text())
    ran = []
    for command in commands:
        if any(marker in command for marker in SKIPPED_LINES):
            continue
        for old, new in SHELL_EDITS.items():
            command = command.replace(old, new)
        run(command, workdir, timeout=600)
        ran.append(command.split()[0:2])
    for expected in (
        ["hf-wav2vec2", "transcribe"],
        ["hf-wav2vec2", "convert"],
        ["hf-wav2vec2", "push"],
        ["hf-wav2vec2", "align"],
        ["hf-wav2vec2", "classify"],
        ["python3", "examples/finetune_classification.py"],
        ["python3", "examples/finetune_ctc.py"],
        ["python3", "examples/pretrain.py"],
    ):
        assert expected in ran, f"the README no longer runs {' '.join(expected)}: {ran}"
