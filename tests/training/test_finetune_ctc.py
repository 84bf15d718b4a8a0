"""CTC fine-tuning with Trainer (hf_wav2vec2.training.finetune, examples/finetune_ctc.py).

The end-to-end test fine-tunes a tiny random "pre-trained" model for a few dozen updates on generated audio in which
every letter is a tone of its own pitch, so the loss has something learnable to go down on. No network, < 60 s.
"""

import importlib.util
import itertools
import json
import math
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import tiny_config
from test_training_ctc_data import TorchcodecBlocker

from hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2ForPreTraining
from hf_wav2vec2.processing_hf_wav2vec2 import HfWav2Vec2Processor
from hf_wav2vec2.training import finetune as finetune_module
from hf_wav2vec2.training.finetune import (
    DataArguments,
    FreezeFinetuneCallback,
    ModelArguments,
    build_model,
    final_evaluation,
    main,
    parse_args,
    parse_phase_ratios,
    tri_stage_lambda,
    tri_stage_scheduler,
)
from hf_wav2vec2.training.finetune_outputs import build_card_info
from hf_wav2vec2.training.vocab import TextNormalization

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000
PITCH = {"a": 300.0, "b": 550.0, "c": 800.0, "d": 1100.0, "e": 1500.0}
WORDS = ["ab", "bad", "cab", "dace", "bead", "deed", "ace", "cede"]


def tone_speech(text: str, rng: np.random.Generator) -> np.ndarray:
    """100 ms of a letter's tone per letter, 60 ms of silence per space, a little noise."""
    pieces = []
    for char in text:
        if char == " ":
            pieces.append(np.zeros(int(0.06 * RATE)))
        else:
            t = np.arange(int(0.1 * RATE)) / RATE
            pieces.append(0.5 * np.sin(2 * np.pi * PITCH[char] * t) * np.hanning(t.size))
    audio = np.concatenate([np.zeros(800), *pieces, np.zeros(800)])
    return (audio + 0.01 * rng.standard_normal(audio.size)).astype(np.float32)


@pytest.fixture(scope="module")
def tone_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    rows = ["file,text"]
    for index in range(16):
        text = " ".join(rng.choice(WORDS, size=2))
        sf.write(str(root / f"u{index:02d}.wav"), tone_speech(text, rng), RATE)
        rows.append(f"u{index:02d}.wav,{text.upper()}")  # upper case in the metadata: normalized to lower
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tone_audiofolder(tmp_path_factory):
    """A datasets audiofolder (train/ and test/, metadata.csv with file_name,text) whose transcripts have upper case
    and punctuation, which fine-tuning's normalization removes."""
    root = tmp_path_factory.mktemp("audiofolder")
    rng = np.random.default_rng(1)
    for split, count in (("train", 8), ("test", 6)):
        (root / split).mkdir()
        rows = ["file_name,text"]
        for index in range(count):
            first, second = rng.choice(WORDS, size=2)
            sf.write(str(root / split / f"{split}{index:02d}.wav"), tone_speech(f"{first} {second}", rng), RATE)
            rows.append(f'{split}{index:02d}.wav,"{first.upper()}, {second.capitalize()}!"')
        (root / split / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def no_torchcodec(monkeypatch):
    """torchcodec seems installed but does not import (its PyPI build on a CPU machine); no attempt is allowed."""
    import datasets

    blocker = TorchcodecBlocker()
    monkeypatch.setattr(datasets.config, "TORCHCODEC_AVAILABLE", True)
    monkeypatch.setattr(sys, "meta_path", [blocker, *sys.meta_path])
    yield blocker
    assert blocker.attempts == [], f"torchcodec was imported: {blocker.attempts}"


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("pretrained")
    HfWav2Vec2ForPreTraining(tiny_config()).save_pretrained(directory)
    return directory


def common_args(output_dir, steps):
    return [
        "--output_dir",
        str(output_dir),
        "--max_steps",
        str(steps),
        "--per_device_train_batch_size",
        "8",
        "--per_device_eval_batch_size",
        "16",
        "--learning_rate",
        "3e-3",
        "--logging_steps",
        "1",
        "--mask_time_prob",
        "0",
        "--mask_feature_prob",
        "0",
        "--layerdrop",
        "0",
        "--activation_dropout",
        "0",
        "--hidden_dropout",
        "0",
        "--attention_dropout",
        "0",
        "--feat_proj_dropout",
        "0",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--dataloader_pin_memory",
        "false",
        "--use_cpu",
        "true",
        "--disable_tqdm",
        "true",
        "--seed",
        "0",
        "--num_examples_to_print",
        "2",
    ]


def log_history(output_dir):
    return json.loads((Path(output_dir) / "trainer_state.json").read_text())["log_history"]


class TestTriStage:
    def test_shape(self):
        f = tri_stage_lambda(100, (0.1, 0.4, 0.5), init_lr_scale=0.01, final_lr_scale=0.05)
        assert f(0) == pytest.approx(0.01)
        assert f(5) == pytest.approx(0.01 + 0.99 * 0.5)  # linear warm-up over 10 updates
        assert all(f(step) == 1.0 for step in range(10, 50))  # hold over 40
        assert f(75) == pytest.approx(math.sqrt(0.05))  # exponential decay: halfway is the geometric mean
        assert f(99) == pytest.approx(0.05 ** (49 / 50))
        assert f(100) == f(500) == pytest.approx(0.05)
        decay = [f(step) for step in range(50, 101)]
        assert all(a > b for a, b in itertools.pairwise(decay))

    def test_scheduler_drives_the_optimizer(self):
        param = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([param], lr=0.1)
        scheduler = tri_stage_scheduler(optimizer, 20)
        lrs = []
        for _ in range(21):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        assert lrs[0] == pytest.approx(0.001) and max(lrs) == pytest.approx(0.1)
        assert lrs[2:10] == [pytest.approx(0.1)] * 8 and lrs[20] == pytest.approx(0.005)

    @pytest.mark.parametrize("bad", ["0.1,0.4", "0.5,0.5,0.5", "-0.1,0.6,0.5"])
    def test_bad_ratios(self, bad):
        with pytest.raises(ValueError):
            parse_phase_ratios(bad)


class TestFreezeCallback:
    def test_freezes_then_unfreezes_all_but_feature_encoder(self):
        model = HfWav2Vec2ForCTC(tiny_config())
        model.freeze_feature_encoder()
        callback = FreezeFinetuneCallback(3)
        callback.on_train_begin(None, SimpleNamespace(global_step=0), None, model=model)
        assert not any(p.requires_grad for p in model.wav2vec2.parameters())
        assert all(p.requires_grad for p in model.lm_head.parameters())
        callback.on_step_begin(None, SimpleNamespace(global_step=2), None, model=model)
        assert not any(p.requires_grad for p in model.wav2vec2.parameters())
        callback.on_step_begin(None, SimpleNamespace(global_step=3), None, model=model)
        assert not any(p.requires_grad for p in model.wav2vec2.feature_extractor.parameters())
        assert all(p.requires_grad for p in model.wav2vec2.encoder.parameters())

    def test_resuming_past_the_freeze_does_nothing(self):
        model = HfWav2Vec2ForCTC(tiny_config())
        FreezeFinetuneCallback(3).on_train_begin(None, SimpleNamespace(global_step=10), None, model=model)
        assert all(p.requires_grad for p in model.wav2vec2.encoder.parameters())


class TestArguments:
    def test_defaults_are_the_papers_recipe(self, tmp_path):
        model_args, _, training_args = parse_args(["--model_name_or_path", "x", "--output_dir", str(tmp_path)])
        assert model_args.ctc_loss_reduction == "mean" and model_args.layerdrop == 0.1
        assert training_args.lr_scheduler == "tri_stage" and training_args.adam_beta2 == 0.98
        assert training_args.length_column_name == "input_length"
        assert training_args.remove_unused_columns is False

    def test_group_by_length(self, tmp_path):
        *_, training_args = parse_args(["--output_dir", str(tmp_path), "--group_by_length"])
        assert training_args.train_sampling_strategy == "group_by_length"

    def test_mmap_threshold_is_off_by_default_and_checked_at_parse_time(self, tmp_path):
        *_, args = parse_args(["--output_dir", str(tmp_path)])
        assert args.malloc_mmap_threshold_kb == 0  # glibc's own: fine-tuning pays time for the memory it saves
        *_, args = parse_args(["--output_dir", str(tmp_path), "--malloc_mmap_threshold_kb", "1024"])
        assert args.malloc_mmap_threshold_kb == 1024
        with pytest.raises(ValueError) as error:
            parse_args(["--output_dir", str(tmp_path), "--malloc_mmap_threshold_kb", "40000"])
        message = str(error.value)
        assert "--malloc_mmap_threshold_kb must be an integer from 0" in message and "40000" in message
        assert "\n" not in message

    def test_bad_schedule_rejected_at_parse_time(self, tmp_path):
        with pytest.raises(ValueError):
            parse_args(["--output_dir", str(tmp_path), "--tri_stage_ratios", "0.5,0.5,0.5"])

    @pytest.mark.parametrize(
        ("flags", "named"),
        [
            (
                ["--lr_scheduler", "tri_stage", "--lr_scheduler_type", "constant"],
                ["--lr_scheduler tri_stage", "--lr_scheduler_type constant"],
            ),
            (["--warmup_steps", "100"], ["--lr_scheduler tri_stage (the default)", "--warmup_steps 100"]),
        ],
    )
    def test_conflicting_scheduler_flags_are_an_error(self, tmp_path, flags, named):
        with pytest.raises(ValueError) as error:
            parse_args(["--output_dir", str(tmp_path), *flags])
        message = str(error.value)
        assert all(flag in message for flag in named) and "conflict" in message and "\n" not in message

    def test_lr_scheduler_type_alone_selects_trainers_scheduler(self, tmp_path):
        *_, args = parse_args(["--output_dir", str(tmp_path), "--lr_scheduler_type", "constant"])
        assert args.lr_scheduler == "trainer" and args.lr_scheduler_type == "constant"
        *_, args = parse_args(["--output_dir", str(tmp_path), "--lr_scheduler", "trainer", "--warmup_steps", "5"])
        assert args.lr_scheduler_type == "linear" and args.warmup_steps == 5

    def test_logging_and_device_defaults(self, tmp_path):
        out = ["--output_dir", str(tmp_path)]
        *_, args = parse_args([*out, "--max_steps", "400", "--eval_strategy", "steps"])
        assert (args.logging_steps, args.eval_steps) == (8, 40)  # 50 loss points and 10 evaluations per run
        *_, args = parse_args([*out, "--max_steps", "20"])
        assert args.logging_steps == 1
        *_, args = parse_args([*out, "--num_train_epochs", "3", "--eval_strategy", "steps"])
        assert (args.logging_steps, args.eval_steps) == (0.02, 0.1)  # fractions of a run of unknown length
        *_, args = parse_args([*out, "--max_steps", "400", "--logging_steps", "100", "--eval_strategy", "steps"])
        assert (args.logging_steps, args.eval_steps) == (100, 100)  # the user's choice, and Trainer's fallback
        assert args.dataloader_pin_memory is torch.accelerator.is_available()  # no pin_memory warnings on CPU
        assert args.ddp_find_unused_parameters is False  # LayerDrop keeps every parameter in the graph
        *_, args = parse_args([*out, "--ddp_find_unused_parameters", "true"])
        assert args.ddp_find_unused_parameters is True

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            ({"dataset_name": "audiofolder"}, "--dataset_name audiofolder needs --data_dir"),
            ({"train_dir": "data", "data_dir": "data"}, "--data_dir is the folder of --dataset_name"),
            ({"train_dir": "data", "dataset_name": "some/corpus"}, "--dataset_name and --train_dir both"),
            ({"train_dir": "data", "language": "Spanish"}, "--language must be an ISO 639 code"),
        ],
    )
    def test_bad_data_arguments(self, values, message):
        with pytest.raises(ValueError, match=re.escape(message)):
            DataArguments(**values)


def load_script():
    spec = importlib.util.spec_from_file_location("finetune_ctc", ROOT / "examples" / "finetune_ctc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetuning_lowers_the_loss(tone_corpus, pretrained_dir, tmp_path, capsys):
    output_dir = tmp_path / "out"
    steps = 40
    argv = [
        "--model_name_or_path",
        str(pretrained_dir),
        "--train_dir",
        str(tone_corpus),
        "--eval_dir",
        str(tone_corpus),
        "--eval_strategy",
        "steps",
        "--eval_steps",
        str(steps),
        "--eval_on_start",
        "true",
        "--freeze_finetune_updates",
        "4",
        "--group_by_length",
        *common_args(output_dir, steps),
    ]
    metrics = load_script().main(argv)

    history = log_history(output_dir)
    eval_losses = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    assert len(eval_losses) >= 2
    assert eval_losses[-1] < 0.7 * eval_losses[0], eval_losses
    train_losses = [entry["loss"] for entry in history if "loss" in entry]
    assert np.mean(train_losses[-5:]) < 0.7 * np.mean(train_losses[:5])

    # WER and CER at every evaluation, and at the end
    assert all("eval_wer" in entry and "eval_cer" in entry for entry in history if "eval_loss" in entry)
    assert 0 <= metrics["eval_cer"] and "eval_wer" in metrics and metrics["train_samples"] == 16

    # tri-stage: 4 warm-up updates, 16 at the peak, then decay
    lrs = [entry["learning_rate"] for entry in history if "learning_rate" in entry]
    assert len(lrs) == steps
    assert lrs[0] < 3e-3 and max(lrs) == pytest.approx(3e-3)
    assert lrs[-1] < 0.1 * 3e-3 and lrs == sorted(lrs[:4]) + lrs[4:]

    # the processor and the model are saved beside each other and reload
    vocab = json.loads((output_dir / "vocab.json").read_text())
    assert set(vocab) == {"<pad>", "<s>", "</s>", "<unk>", "|", "a", "b", "c", "d", "e"}
    processor = HfWav2Vec2Processor.from_pretrained(output_dir)
    assert processor.tokenizer.get_vocab() == vocab and processor.feature_extractor.sampling_rate == RATE
    # trained with padding masked, so the saved processor masks padding in batched inference too
    assert processor.feature_extractor.return_attention_mask is True
    model = HfWav2Vec2ForCTC.from_pretrained(output_dir)
    assert model.config.vocab_size == len(vocab) and model.config.ctc_loss_reduction == "mean"

    printed = capsys.readouterr().out
    assert "Final results on the evaluation set, 16 utterances: WER" in printed
    assert printed.count("REF: ") == 2 and printed.count("HYP: ") == 2


def test_from_scratch_runs_and_reports_on_training_data(tone_corpus, tmp_path, capsys, monkeypatch):
    config_dir = tmp_path / "config"
    tiny_config().save_pretrained(config_dir)
    output_dir = tmp_path / "scratch"
    calls = []  # recorded, not applied: glibc's threshold would stay changed for the rest of the test session

    def recording(kb):
        calls.append((kb, (output_dir / "vocab.json").exists()))
        return f"malloc: {kb} KiB (test)"

    monkeypatch.setattr(finetune_module, "set_mmap_threshold", recording)
    metrics = main(
        [
            "--from_scratch",
            "--config_name",
            str(config_dir),
            "--train_dir",
            str(tone_corpus),
            "--max_train_samples",
            "8",
            "--malloc_mmap_threshold_kb",
            "1024",
            *common_args(output_dir, 2),
        ]
    )
    # once, before the vocabulary (and so the data and the model) exists
    assert calls == [(1024, False)] and (output_dir / "vocab.json").exists()
    assert "train_eval_wer" in metrics and "train_eval_cer" in metrics  # no evaluation data given
    assert "training set (no evaluation data given)" in capsys.readouterr().out
    assert HfWav2Vec2ForCTC.from_pretrained(output_dir).config.hidden_size == 32


def test_feature_encoder_frozen_only_for_pretrained_models(pretrained_dir):
    config = tiny_config(vocab_size=10)
    scratch = build_model(ModelArguments(from_scratch=True), config)
    assert all(p.requires_grad for p in scratch.wav2vec2.feature_extractor.parameters())
    pretrained = build_model(ModelArguments(model_name_or_path=str(pretrained_dir)), config)
    assert not any(p.requires_grad for p in pretrained.wav2vec2.feature_extractor.parameters())
    assert all(p.requires_grad for p in pretrained.wav2vec2.encoder.parameters())
    # the pre-trained weights are loaded, the head is new
    source = HfWav2Vec2ForPreTraining.from_pretrained(pretrained_dir)
    assert torch.equal(
        pretrained.wav2vec2.encoder.layers[0].attention.q_proj.weight,
        source.wav2vec2.encoder.layers[0].attention.q_proj.weight,
    )
    assert pretrained.lm_head.weight.shape == (10, 32)


def test_push_to_hub_without_hub_module_fails_before_training(tone_corpus, pretrained_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "hf_wav2vec2.hub", None)  # as if the module did not exist
    with pytest.raises(RuntimeError, match="hf_wav2vec2.hub"):
        main(
            [
                "--model_name_or_path",
                str(pretrained_dir),
                "--train_dir",
                str(tone_corpus),
                "--push_to_hub",
                "true",
                *common_args(tmp_path / "out", 1),
            ]
        )
    assert not (tmp_path / "out" / "vocab.json").exists()


def test_push_to_hub_hook_uploads_the_output_dir(tone_corpus, pretrained_dir, tmp_path, monkeypatch):
    from hf_wav2vec2 import hub

    calls = []
    real = hub.push_to_hub

    def dry_run(model_dir, repo_id, **kwargs):  # the real function, writing the upload folder instead of uploading
        calls.append((model_dir, repo_id, kwargs))
        return real(model_dir, repo_id, dry_run_dir=tmp_path / "upload", **kwargs)

    monkeypatch.setattr(hub, "push_to_hub", dry_run)
    output_dir = tmp_path / "out"
    main(
        [
            "--model_name_or_path",
            str(pretrained_dir),
            "--train_dir",
            str(tone_corpus),
            "--max_train_samples",
            "8",
            "--push_to_hub",
            "true",
            "--hub_model_id",
            "someone/tones",
            "--language",
            "en",
            *common_args(output_dir, 1),
        ]
    )
    [(model_dir, repo_id, kwargs)] = calls
    assert Path(model_dir) == output_dir and repo_id == "someone/tones"
    card = kwargs["card"]
    # a local checkpoint is not a Hub id, so it is named in the training data instead of as base_model
    assert card.base_model is None and f"local checkpoint `{pretrained_dir.name}`" in card.training_data
    assert card.language == "en" and "8 transcribed clips" in card.training_data
    from hf_wav2vec2.hub import CardInfo

    assert CardInfo.load(output_dir) == card  # the card of the upload is the one saved beside the model
    assert (tmp_path / "upload" / "README.md").is_file() and (tmp_path / "upload" / "vocab.json").is_file()


def test_starts_from_a_transformers_checkpoint(tmp_path):
    import transformers

    source_dir = tmp_path / "w2v"
    torch.manual_seed(0)
    config = tiny_config(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)
    transformers.Wav2Vec2ForPreTraining(config.to_transformers_config()).save_pretrained(source_dir)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(source_dir)
    assert json.loads((source_dir / "config.json").read_text())["model_type"] == "wav2vec2"

    from hf_wav2vec2.training.finetune import (
        build_config,
        build_feature_extractor,
        build_tokenizer,
    )
    from hf_wav2vec2.training.vocab import TextNormalization

    tokenizer = build_tokenizer(["abc d"], tmp_path / "out", TextNormalization())
    args = ModelArguments(model_name_or_path=str(source_dir), mask_feature_prob=0.0, layerdrop=0.05)
    ft_config = build_config(args, tokenizer)
    assert ft_config.model_type == "hf_wav2vec2" and ft_config.do_stable_layer_norm
    assert ft_config.vocab_size == 9 and ft_config.layerdrop == 0.05 and ft_config.ctc_loss_reduction == "mean"
    extractor = build_feature_extractor(args, ft_config)
    assert type(extractor).__name__ == "HfWav2Vec2FeatureExtractor" and extractor.return_attention_mask
    model = build_model(args, ft_config)
    source = transformers.Wav2Vec2ForPreTraining.from_pretrained(source_dir)
    assert torch.equal(
        model.wav2vec2.encoder.layers[1].feed_forward.output_dense.weight,
        source.wav2vec2.encoder.layers[1].feed_forward.output_dense.weight,
    )


def printed_rates(text: str, label: str) -> tuple[str, str]:
    """("WER", "CER") percentages as printed after `label` (the final results, or the evaluate command's line)."""
    match = re.search(label + r".*?WER (\d+\.\d\d)%\s+CER (\d+\.\d\d)%", text)
    assert match, text
    return match.group(1), match.group(2)


def test_audiofolder_without_torchcodec_and_evaluation_matching_finetuning(
    tone_audiofolder, pretrained_dir, tmp_path, capsys, no_torchcodec
):
    from hf_wav2vec2 import cli
    from hf_wav2vec2.hub import CardInfo
    from hf_wav2vec2.transcribe import evaluate_model, normalize_transcript

    output_dir = tmp_path / "out"
    steps = 20
    args = common_args(output_dir, steps)
    for flag in ("--logging_steps", "--dataloader_pin_memory"):  # the defaults are under test
        del args[args.index(flag) : args.index(flag) + 2]
    args[args.index("--per_device_eval_batch_size") + 1] = "1"  # no padding: clip by clip, as the pipeline
    args[args.index("--per_device_train_batch_size") + 1] = "4"
    metrics = main(
        [
            "--model_name_or_path",
            str(pretrained_dir),
            "--dataset_name",
            "audiofolder",
            "--data_dir",
            str(tone_audiofolder),
            "--eval_split_name",
            "test",
            "--cache_dir",
            str(tmp_path / "cache"),
            "--language",
            "es",
            "--lr_scheduler_type",
            "constant",
            *args,
        ]
    )
    printed = capsys.readouterr().out
    assert printed.count("Final results on the evaluation set, 6 utterances") == 1
    final_wer, final_cer = printed_rates(printed, "Final results")

    # hf-wav2vec2 evaluate on the same model and clips prints the same rates: the saved normalization is applied
    assert cli.main(["evaluate", str(tone_audiofolder / "test"), "--model", str(output_dir), "--quiet"]) == 0
    assert printed_rates(capsys.readouterr().out, "") == (final_wer, final_cer)
    rows = [line.split(",", 1) for line in (tone_audiofolder / "test" / "metadata.csv").read_text().splitlines()[1:]]
    files = [str(tone_audiofolder / "test" / name) for name, _ in rows]
    references = [text.strip('"') for _, text in rows]
    result = evaluate_model(str(output_dir), files, references)
    assert result.cer == pytest.approx(metrics["eval_cer"], abs=1e-12)
    assert result.wer == pytest.approx(metrics["eval_wer"], abs=1e-12)
    # the saved normalization is what scored the run (20 updates may leave a model saying nothing, so the references
    # are compared, not the rates): lower case, no punctuation, unlike the transcripts as written
    assert result.references == [text.lower().replace(",", "").replace("!", "") for text in references]
    unnormalized = evaluate_model(str(output_dir), files, references, normalize=normalize_transcript)
    assert unnormalized.references != result.references

    # what the run leaves beside the model
    assert TextNormalization.from_pretrained(output_dir) == TextNormalization()
    assert (output_dir / "pipeline_hf_wav2vec2.py").is_file() and (output_dir / "audio.py").is_file()
    assert "hf-wav2vec2-asr" in json.loads((output_dir / "config.json").read_text())["custom_pipelines"]
    card = CardInfo.load(output_dir)
    assert card.language == "es" and card.base_model is None  # a local checkpoint is no Hub base model
    assert card.datasets == [] and card.results == []  # an audiofolder is no Hub dataset
    assert "8 transcribed clips" in card.training_data and f"`{tone_audiofolder.name}`" in card.training_data
    assert f"CER {final_cer} %" in card.results_note and "6 held-out clips" in card.results_note
    assert (output_dir / "training_curves.png").read_bytes()[:4] == b"\x89PNG"

    history = log_history(output_dir)
    assert len([entry for entry in history if "loss" in entry]) == steps  # short runs log every update
    assert {entry["learning_rate"] for entry in history if "learning_rate" in entry} == {3e-3}  # constant


class FakeTrainer:
    """What final_evaluation uses of a Trainer, on a chosen process."""

    def __init__(self, tokenizer, main_process: bool):
        self.tokenizer, self.main_process, self.saved = tokenizer, main_process, []

    def predict(self, dataset, metric_key_prefix):
        ids = self.tokenizer("ab bad").input_ids
        return SimpleNamespace(
            predictions=np.array([ids]),
            label_ids=np.array([ids]),
            metrics={f"{metric_key_prefix}_wer": 0.0, f"{metric_key_prefix}_cer": 0.0},
        )

    def is_world_process_zero(self):
        return self.main_process

    def save_metrics(self, prefix, metrics):
        self.saved.append(prefix)


def test_final_results_are_printed_by_the_main_process_only(tmp_path, capsys):
    from hf_wav2vec2.training.finetune import build_tokenizer

    tokenizer = build_tokenizer(["ab bad"], tmp_path, TextNormalization())
    for main_process, expected in ((False, 0), (True, 1)):
        trainer = FakeTrainer(tokenizer, main_process)
        metrics = final_evaluation(trainer, tokenizer, [0], "eval", num_examples=1)
        printed = capsys.readouterr().out
        assert printed.count("Final results") == expected and printed.count("REF: ab bad") == expected
        assert metrics["eval_samples"] == 1 and trainer.saved == ["eval"]


def test_card_info_carries_language_base_model_and_training_data():
    import datasets

    train = datasets.Dataset.from_dict({"input_length": [16000 * 90] * 40})  # 40 clips of 90 s: one hour
    metrics = {"eval_wer": 0.25, "eval_cer": 0.125, "eval_samples": 7}
    hub = ModelArguments(model_name_or_path="facebook/wav2vec2-base")
    data = DataArguments(
        dataset_name="someone/spanish-speech", dataset_config_name="es", eval_split_name="test", language="es"
    )
    card = build_card_info(hub, data, train, TextNormalization(), metrics)
    assert card.language == "es" and card.base_model == "facebook/wav2vec2-base"
    assert card.datasets == ["someone/spanish-speech"]
    [result] = card.results
    assert (result.dataset_type, result.config, result.split, result.wer, result.cer) == (
        "someone/spanish-speech",
        "es",
        "test",
        25.0,
        12.5,
    )
    assert "40 transcribed clips, 1.00 hours" in card.training_data
    assert "the `train` split of `someone/spanish-speech`, configuration `es`" in card.training_data
    assert "Fine-tuned from `facebook/wav2vec2-base`" in card.training_data

    scratch = ModelArguments(from_scratch=True)
    folder = DataArguments(train_dir="data/es-train", eval_dir="data/es-test")
    card = build_card_info(scratch, folder, train.select(range(4)), TextNormalization(), metrics)
    assert card.language is None and card.base_model is None and card.datasets == [] and card.results == []
    assert "4 transcribed clips, 6.0 minutes from the folder `es-train`" in card.training_data
    assert "from scratch" in card.training_data and "7 held-out clips (es-test)" in card.results_note
    card = build_card_info(scratch, folder, train, TextNormalization(), {"train_eval_wer": 0.5, "train_eval_cer": 0.25})
    assert "No held-out data" in card.results_note and "CER 25.00 %" in card.results_note


def test_two_processes_train_together_and_report_once(tone_corpus, pretrained_dir, tmp_path):
    """torchrun with 2 processes on this CPU: one DDP run (not two separate ones), results printed once, without
    pin_memory or find_unused_parameters warnings."""
    import subprocess

    if torch.accelerator.is_available():
        pytest.skip("checks the defaults of a machine without accelerator")
    output_dir = tmp_path / "ddp"
    args = common_args(output_dir, 2)
    del args[args.index("--dataloader_pin_memory") : args.index("--dataloader_pin_memory") + 2]
    del args[args.index("--use_cpu") : args.index("--use_cpu") + 2]  # the default on a machine without accelerator
    args[args.index("--per_device_train_batch_size") + 1] = "2"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(ROOT / "examples" / "finetune_ctc.py"),
        "--model_name_or_path",
        str(pretrained_dir),
        "--train_dir",
        str(tone_corpus),
        "--max_train_samples",
        "4",
        *args,
        "--layerdrop",
        "0.5",
    ]  # skipped layers must still join the graph: DDP does not look for unused ones
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Final results on the training set") == 1, done.stdout
    for warning in ("pin_memory", "find_unused_parameters", "parallel_mode"):
        assert warning not in done.stderr, warning
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and (output_dir / "card_info.json").is_file()
