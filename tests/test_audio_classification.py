"""pipeline("audio-classification") for wav2vec 2.0 classifiers: this package's audio path (files, any rate, soxr
resampling, one-line errors), top_k, transformers' own model types untouched, and ``hf-wav2vec2 classify``."""

import json

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
import transformers
from conftest import NO_DROPOUT, TINY, tiny_config
from transformers import AudioClassificationPipeline, pipeline

from hf_wav2vec2 import HfWav2Vec2AudioClassificationPipeline, HfWav2Vec2FeatureExtractor
from hf_wav2vec2.audio import AudioError
from hf_wav2vec2.modeling_hf_wav2vec2_classification import HfWav2Vec2ForSequenceClassification

LABELS = {0: "yes", 1: "no", 2: "up", 3: "down"}
HEAD = dict(
    num_labels=4,
    id2label=LABELS,
    label2id={v: k for k, v in LABELS.items()},
    classifier_proj_size=8,
    initializer_range=0.5,
)  # large init: scores far apart, so the order of labels means something


@pytest.fixture
def model_dir(tmp_path):
    model = HfWav2Vec2ForSequenceClassification(tiny_config("large", **NO_DROPOUT, **HEAD)).eval()
    directory = tmp_path / "classifier"
    model.save_pretrained(directory)
    HfWav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(directory)
    return directory


def clip_8k(seed=0, seconds=0.5):
    rng = np.random.default_rng(seed)
    t = np.arange(int(8000 * seconds)) / 8000
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)


def by_hand(model, clip, rate):
    """Scores of every label for `clip` at `rate`, resampled with soxr and featurized as the pipeline should."""
    audio = soxr.resample(clip, rate, 16000, quality="HQ").astype(np.float32)
    inputs = HfWav2Vec2FeatureExtractor(return_attention_mask=True)(audio, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        probs = model(**inputs).logits[0].softmax(-1)
    order = probs.argsort(descending=True).tolist()
    return [(model.config.id2label[i], float(probs[i])) for i in order]


def pairs(result):
    return [(item["label"], item["score"]) for item in result]


def assert_same(result, expected):
    assert [label for label, _ in pairs(result)] == [label for label, _ in expected]
    assert np.allclose([s for _, s in pairs(result)], [s for _, s in expected], atol=1e-5)


def test_our_models_get_our_pipeline_with_soxr_resampling(tmp_path, model_dir):
    classifier = pipeline("audio-classification", model=str(model_dir))
    assert type(classifier) is HfWav2Vec2AudioClassificationPipeline
    clip = clip_8k()
    expected = by_hand(classifier.model, clip, 8000)
    assert len({label for label, _ in expected[:2]}) == 2 and expected[0][1] - expected[1][1] > 1e-3
    assert_same(classifier({"raw": clip, "sampling_rate": 8000}, top_k=None), expected)
    wav = tmp_path / "clip.wav"
    sf.write(wav, clip, 8000, subtype="FLOAT")
    assert_same(classifier(str(wav), top_k=2), expected[:2])  # a file at 8 kHz, decoded and resampled here
    assert_same(classifier((clip, 8000)), expected)  # top_k defaults to 5, clamped to the 4 labels
    two = classifier([{"raw": clip, "sampling_rate": 8000}, str(wav)], top_k=1)
    assert [pairs(r)[0][0] for r in two] == [expected[0][0]] * 2


def test_transformers_checkpoints_get_our_pipeline_other_model_types_keep_theirs(tmp_path):
    theirs = transformers.Wav2Vec2ForSequenceClassification(
        transformers.Wav2Vec2Config(**TINY, **NO_DROPOUT, **HEAD, feat_extract_norm="layer", do_stable_layer_norm=True)
    ).eval()
    theirs.save_pretrained(tmp_path / "wav2vec2")
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(tmp_path / "wav2vec2")
    classifier = pipeline("audio-classification", model=str(tmp_path / "wav2vec2"))
    assert type(classifier) is HfWav2Vec2AudioClassificationPipeline
    assert type(classifier.model) is transformers.Wav2Vec2ForSequenceClassification  # their model, untouched
    clip = clip_8k(seed=3)
    assert_same(classifier({"raw": clip, "sampling_rate": 8000}, top_k=None), by_hand(theirs, clip, 8000))

    hubert = transformers.HubertForSequenceClassification(transformers.HubertConfig(**TINY, num_labels=2)).eval()
    other = pipeline("audio-classification", model=hubert, feature_extractor=transformers.Wav2Vec2FeatureExtractor())
    assert type(other) is AudioClassificationPipeline


def test_multi_label_models_get_sigmoid_scores(model_dir):
    config = transformers.AutoConfig.from_pretrained(model_dir)
    config.problem_type = "multi_label_classification"
    model = HfWav2Vec2ForSequenceClassification.from_pretrained(model_dir, config=config).eval()
    classifier = pipeline(
        "audio-classification", model=model, feature_extractor=HfWav2Vec2FeatureExtractor(return_attention_mask=True)
    )
    clip = soxr.resample(clip_8k(), 8000, 16000).astype(np.float32)
    inputs = HfWav2Vec2FeatureExtractor(return_attention_mask=True)(clip, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs).logits[0].sigmoid()
    scores = {item["label"]: item["score"] for item in classifier(clip, top_k=None)}
    assert np.allclose([scores[LABELS[i]] for i in range(4)], expected.numpy(), atol=1e-5)
    assert sum(scores.values()) > 1.05 or sum(scores.values()) < 0.95  # independent scores, not a softmax


def test_bad_input_is_a_one_line_error_naming_it(tmp_path, model_dir):
    classifier = pipeline("audio-classification", model=str(model_dir))
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioError, match="missing.wav") as error:
        classifier(str(missing))
    assert "\n" not in str(error.value)
    field = classifier.model.config.receptive_field  # 40 samples for the tiny conv stack
    with pytest.raises(AudioError, match=f"the model needs at least {field} samples"):
        classifier({"raw": np.zeros(field // 2 - 1, np.float32), "sampling_rate": 8000})
    with pytest.raises(AudioError, match="no audio to classify"):
        classifier([])


@pytest.fixture
def classify_command(monkeypatch):
    """``hf-wav2vec2 classify`` through the command line's own main (listed in COMMANDS if it is not yet)."""
    from hf_wav2vec2 import cli
    from hf_wav2vec2.cli import classify

    if classify not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, classify))
    return cli.main  # conftest gives transformers' verbosity back after the test


def test_classify_command(tmp_path, model_dir, classify_command, capsys):
    clips = []
    for seed in (1, 2):
        path = tmp_path / f"clip{seed}.wav"
        sf.write(path, clip_8k(seed=seed), 8000)
        clips.append(path)
    model = HfWav2Vec2ForSequenceClassification.from_pretrained(model_dir).eval()
    expected = [by_hand(model, sf.read(path, dtype="float32")[0], 8000) for path in clips]
    capsys.readouterr()  # the loading bar above

    files = [str(clips[0]), str(tmp_path / "nope.wav"), str(clips[1])]
    assert classify_command(["classify", *files, "--model", str(model_dir), "--format", "json", "--top_k", "0"]) == 1
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [r["file"] for r in results] == [str(clips[0]), str(clips[1])]  # the unreadable one is skipped
    for result, wanted in zip(results, expected, strict=True):
        assert_same(result["labels"], wanted)
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and "nope.wav" in errors[0] and errors[1].endswith("1 of 3 files failed")

    out = tmp_path / "labels.txt"
    assert classify_command(["classify", str(clips[0]), "--model", str(model_dir), "--top_k", "2", "-o", str(out)]) == 0
    (label1, score1), (label2, score2) = expected[0][:2]
    assert out.read_text() == f"{clips[0]}\t{label1} {score1:.3f}, {label2} {score2:.3f}\n"
    with pytest.raises(SystemExit) as usage:
        classify_command(["classify", str(clips[0]), "--model", str(model_dir), "--top_k", "-1"])
    assert usage.value.code == 2
    assert classify_command(["classify", str(clips[0]), "--model", str(model_dir), "-o", str(clips[0])]) == 2
    assert "would overwrite an input file" in capsys.readouterr().err


def test_classify_files_skips_unreadable_files_only_when_asked(tmp_path, model_dir):
    from hf_wav2vec2.pipeline_audio_classification import classify_files

    classifier = pipeline("audio-classification", model=str(model_dir))
    good = tmp_path / "good.wav"
    sf.write(good, clip_8k(), 8000)
    seen = []
    results = classify_files(
        classifier,
        [str(tmp_path / "bad.wav"), str(good)],
        top_k=1,
        on_error=lambda path, error: seen.append((path, type(error))),
    )
    assert [r["file"] for r in results] == [str(good)] and len(results[0]["labels"]) == 1
    assert seen == [(str(tmp_path / "bad.wav"), AudioError)]
    with pytest.raises(AudioError, match="bad.wav"):
        classify_files(classifier, [str(tmp_path / "bad.wav")])
