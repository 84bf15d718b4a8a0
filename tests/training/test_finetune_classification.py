"""Fine-tuning a classifier with Trainer (examples/finetune_classification.py): a folder of labelled clips
(metadata.csv: file,label), labels taken from the training data, accuracy reported, a model the audio-classification
pipeline reads; starting points (transformers checkpoints, classification checkpoints with other labels), cropping."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
import transformers
from conftest import NO_DROPOUT
from transformers import pipeline

import hf_wav2vec2.training.finetune_classification as classification_module
from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForSequenceClassification
from hf_wav2vec2.training.finetune_classification import (
    DataCollatorForAudioClassification,
    ModelArguments,
    _ClassificationTrainer,
    build_config,
    build_model,
    label_mapping,
    main,
    parse_args,
)

# the real 7-layer conv geometry (20 ms frames) with few channels: a 0.4 s clip is 20 frames, so training is fast
FAST = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    conv_dim=(16,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    feat_extract_norm="layer",
    conv_bias=True,
    do_stable_layer_norm=True,
    **NO_DROPOUT,
)
TONES = {"low": 300.0, "mid": 1200.0, "high": 3000.0}


def write_folder(folder, per_label, seed, labels=TONES, column="label"):
    """Tones of each label's frequency (+-10 %, random length and phase, a little noise), with metadata.csv."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    rows = [f"file,{column}"]
    for label, frequency in labels.items():
        for i in range(per_label):
            t = np.arange(int(16000 * rng.uniform(0.3, 0.5))) / 16000
            clip = 0.3 * np.sin(2 * np.pi * frequency * rng.uniform(0.9, 1.1) * t + rng.uniform(0, 6.3))
            clip = clip + 0.02 * rng.standard_normal(t.shape)
            sf.write(folder / f"{label}_{i}.wav", clip.astype(np.float32), 16000)
            rows.append(f"{label}_{i}.wav,{label}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def fast_config_dir(tmp_path):
    HfWav2Vec2Config(**FAST).save_pretrained(tmp_path / "config")
    return tmp_path / "config"


def test_finetune_learns_labelled_clips_and_saves_a_pipeline_ready_model(tmp_path, fast_config_dir, monkeypatch):
    train = write_folder(tmp_path / "train", per_label=6, seed=0)
    test = write_folder(tmp_path / "test", per_label=3, seed=1)
    out = tmp_path / "out"
    calls = []  # recorded, not applied: glibc's threshold would stay changed for the rest of the test session
    monkeypatch.setattr(
        classification_module, "set_mmap_threshold", lambda kb: calls.append((kb, out.exists())) or "malloc: test"
    )
    metrics = main(
        [
            "--from_scratch",
            "--config_name",
            str(fast_config_dir),
            "--train_dir",
            str(train),
            "--eval_dir",
            str(test),
            "--output_dir",
            str(out),
            "--max_steps",
            "40",
            "--learning_rate",
            "3e-3",
            "--per_device_train_batch_size",
            "6",
            "--logging_steps",
            "10",
            "--save_strategy",
            "no",
            "--seed",
            "0",
            "--dataloader_pin_memory",
            "false",
            "--malloc_mmap_threshold_kb",
            "2048",
        ]
    )
    assert calls == [(2048, False)]  # once, before anything was written
    assert metrics["eval_samples"] == 9 and metrics["train_samples"] == 18
    assert metrics["eval_accuracy"] >= 8 / 9, metrics  # chance is 1/3
    assert set(metrics["eval_accuracy_per_label"]) == set(TONES)
    saved = json.loads((out / "all_results.json").read_text())
    assert saved["eval_accuracy"] == metrics["eval_accuracy"]
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "high", "1": "low", "2": "mid"}  # sorted training labels
    assert config["problem_type"] == "single_label_classification"
    assert json.loads((out / "preprocessor_config.json").read_text())["return_attention_mask"] is True

    classifier = pipeline("audio-classification", model=str(out))
    predicted = [classifier(str(test / f"{label}_{i}.wav"), top_k=1)[0]["label"] for label in TONES for i in range(3)]
    expected = [label for label in TONES for _ in range(3)]
    hits = [p == e for p, e in zip(predicted, expected, strict=True)]
    assert np.mean(hits) == pytest.approx(metrics["eval_accuracy"])
    # the folder carries its pipeline as remote code, and push's card defaults: the held-out accuracy
    assert config["custom_pipelines"]["hf-wav2vec2-audio-classification"]["pt"] == ["AutoModelForAudioClassification"]
    assert (out / "pipeline_audio_classification.py").is_file()
    card_info = json.loads((out / "card_info.json").read_text())
    assert card_info["results"][0]["accuracy"] == round(100 * metrics["eval_accuracy"], 2)
    assert card_info["results"][0]["dataset_name"] == "test" and card_info["base_model"] is None


def test_mmap_threshold_is_off_by_default_and_checked_at_parse_time(tmp_path):
    *_, args = parse_args(["--output_dir", str(tmp_path)])
    assert args.malloc_mmap_threshold_kb == 0  # glibc's own, as for CTC fine-tuning
    with pytest.raises(ValueError, match=r"^--malloc_mmap_threshold_kb must be an integer from 0 .*40000$"):
        parse_args(["--output_dir", str(tmp_path), "--malloc_mmap_threshold_kb", "40000"])


def test_labels_and_their_errors(tmp_path):
    assert label_mapping(["yes", "no", "yes"], ["no"]) == ({0: "no", 1: "yes"}, {"no": 0, "yes": 1})
    with pytest.raises(ValueError, match=r"evaluation labels \['up'\] never occur in the training data"):
        label_mapping(["yes", "no"], ["up", "no"])
    with pytest.raises(ValueError, match="1 distinct label"):
        label_mapping(["yes", "yes"])
    folder = write_folder(tmp_path / "train", per_label=1, seed=0, column="category")
    with pytest.raises(ValueError, match=r"row 1 has no column\(s\) \['label'\]"):
        main(
            [
                "--from_scratch",
                "--config_preset",
                "tiny",
                "--train_dir",
                str(folder),
                "--output_dir",
                str(tmp_path / "out"),
            ]
        )


def test_starting_points_get_a_fresh_head_unless_trained_on_these_labels(tmp_path):
    id2label = {0: "no", 1: "yes"}
    transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**FAST)).save_pretrained(tmp_path / "base")
    args = ModelArguments(model_name_or_path=str(tmp_path / "base"))
    model = build_model(args, build_config(args, id2label))
    assert model.config.id2label == id2label and model.classifier.out_features == 2
    assert not any(p.requires_grad for p in model.wav2vec2.feature_extractor.parameters())  # frozen by default
    assert all(p.requires_grad for p in model.wav2vec2.encoder.parameters())

    trained = HfWav2Vec2ForSequenceClassification(
        HfWav2Vec2Config(**FAST, num_labels=2, id2label=id2label, label2id={"no": 0, "yes": 1})
    )
    torch.nn.init.constant_(trained.classifier.weight, 0.5)
    trained.save_pretrained(tmp_path / "kws")
    args = ModelArguments(model_name_or_path=str(tmp_path / "kws"), freeze_base_model=True)
    same = build_model(args, build_config(args, id2label))
    assert torch.equal(same.classifier.weight, trained.classifier.weight)  # same labels: the head is kept
    assert not any(p.requires_grad for p in same.wav2vec2.parameters())
    other = build_model(args, build_config(args, {0: "left", 1: "right"}))  # same size, other meaning
    assert not torch.equal(other.classifier.weight, trained.classifier.weight)


def test_training_batches_are_cropped_evaluation_batches_whole():
    import datasets

    clips = [np.arange(n, dtype=np.float32) for n in (3000, 1200, 800)]
    dataset = datasets.Dataset.from_dict({"input_values": clips, "labels": [0, 1, 0]})
    collator = DataCollatorForAudioClassification(
        transformers.Wav2Vec2FeatureExtractor(), max_length=1000, generator=np.random.default_rng(0)
    )
    batch = collator([dataset[0], dataset[1], dataset[2]])
    assert batch["input_values"].shape == (3, 1000)
    assert batch["attention_mask"].sum(1).tolist() == [1000, 1000, 800]
    first = batch["input_values"][0]
    assert torch.equal(first, first[0] + torch.arange(1000.0))  # a contiguous window of the clip
    starts = {int(collator([dataset[0]])["input_values"][0, 0]) for _ in range(10)}
    assert len(starts) > 1  # a new offset each time
    assert batch["labels"].tolist() == [0, 1, 0]

    model = HfWav2Vec2ForSequenceClassification(HfWav2Vec2Config(**FAST, num_labels=2))
    trainer = _ClassificationTrainer(
        model=model,
        args=transformers.TrainingArguments(
            "unused",
            per_device_eval_batch_size=3,
            per_device_train_batch_size=3,
            remove_unused_columns=False,
            report_to="none",
            dataloader_pin_memory=False,
        ),
        data_collator=collator,
        train_dataset=dataset,
        eval_dataset=dataset,
    )
    trainer.eval_collator = DataCollatorForAudioClassification(transformers.Wav2Vec2FeatureExtractor())
    assert next(iter(trainer.get_train_dataloader()))["input_values"].shape == (3, 1000)
    assert next(iter(trainer.get_eval_dataloader()))["input_values"].shape == (3, 3000)
    assert trainer.data_collator is collator  # restored after building the evaluation loader


def test_clips_are_decoded_at_the_feature_extractors_rate(tmp_path):
    """A model made for 8 kHz audio (telephone speech): its extractor's rate is the rate training decodes at and the
    rate the pipeline resamples to; --config_name's folder gives it for a model trained from scratch."""
    from hf_wav2vec2 import HfWav2Vec2FeatureExtractor
    from hf_wav2vec2.training.ctc_data import load_labeled_folder
    from hf_wav2vec2.training.finetune_classification import build_feature_extractor, prepare_classification_dataset

    folder = write_folder(tmp_path / "train", per_label=1, seed=0, labels={"low": 300.0})  # 16 kHz files
    config_dir = tmp_path / "config"
    HfWav2Vec2Config(**FAST).save_pretrained(config_dir)
    HfWav2Vec2FeatureExtractor(sampling_rate=8000).save_pretrained(config_dir)
    extractor = build_feature_extractor(ModelArguments(from_scratch=True, config_name=str(config_dir)), None)
    assert extractor.sampling_rate == 8000
    dataset = load_labeled_folder(folder, text_column="label").rename_column("text", "label")
    featurized = prepare_classification_dataset(dataset, extractor, {"low": 0})
    samples_16k = sf.info(folder / "low_0.wav").frames
    assert abs(featurized[0]["input_length"] - samples_16k / 2) <= 1
    default = build_feature_extractor(ModelArguments(from_scratch=True, config_preset="tiny"), HfWav2Vec2Config(**FAST))
    assert default.sampling_rate == 16000
