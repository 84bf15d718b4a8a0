"""Publishing audio classifiers (offline): the upload folder carries the classification pipeline as remote code and
works in a fresh process that cannot import hf_wav2vec2 (our pipeline with soxr resampling, and transformers' own at
16 kHz), and the model card describes a classifier (pipeline tag, labels, accuracy instead of WER / CER)."""

import argparse
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import yaml
from blocked_package import BLOCK_HF_WAV2VEC2
from conftest import NO_DROPOUT, tiny_config
from transformers import pipeline

from hf_wav2vec2 import HfWav2Vec2AudioClassificationPipeline, HfWav2Vec2FeatureExtractor
from hf_wav2vec2.cli import push as push_command
from hf_wav2vec2.hub import CardInfo, PublishError, Result, push_to_hub, render_model_card
from hf_wav2vec2.modeling_hf_wav2vec2 import HfWav2Vec2ForCTC
from hf_wav2vec2.modeling_hf_wav2vec2_classification import (
    HfWav2Vec2ForAudioFrameClassification,
    HfWav2Vec2ForSequenceClassification,
    HfWav2Vec2ForXVector,
)

LABELS = {0: "yes", 1: "no", 2: "up", 3: "down"}
HEAD = dict(
    num_labels=4,
    id2label=LABELS,
    label2id={v: k for k, v in LABELS.items()},
    classifier_proj_size=8,
    initializer_range=0.5,
)  # large init: scores far apart, so the order of labels means something
PIPELINE_FILES = {"pipeline_audio_classification.py", "pipeline_hf_wav2vec2.py", "audio.py", "chunking.py"}
KWS_RESULT = Result(dataset_type="superb", dataset_name="SUPERB keyword spotting", split="test", accuracy=91.5)


@pytest.fixture
def classifier_dir(tmp_path):
    model = HfWav2Vec2ForSequenceClassification(tiny_config("large", **NO_DROPOUT, **HEAD)).eval()
    directory = tmp_path / "classifier"
    model.save_pretrained(directory)
    HfWav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(directory)
    return directory


def clip(rate, seconds=0.5, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)


FRESH_PROCESS_SCRIPT = BLOCK_HF_WAV2VEC2 + textwrap.dedent(
    """
    import numpy as np
    from transformers import pipeline

    folder, clip_16k, clip_8k, wav_8k, out_file = sys.argv[1:]
    shipped = pipeline(model=folder, trust_remote_code=True)  # the task from custom_pipelines
    stock = pipeline("audio-classification", model=folder, trust_remote_code=True)
    x16, x8 = np.load(clip_16k), np.load(clip_8k)
    json.dump({
        "classes": [type(shipped).__module__ + "." + type(shipped).__name__, type(stock).__module__,
                    type(shipped.model).__module__],
        "8 kHz": shipped({"raw": x8, "sampling_rate": 8000}, top_k=None),
        "file": shipped(wav_8k, top_k=2),
        "16 kHz": shipped(x16, top_k=None),
        "stock 16 kHz": stock(x16, top_k=None),
        "hf_wav2vec2_loaded": any(name.split(".")[0] == "hf_wav2vec2" for name in sys.modules),
    }, open(out_file, "w"))
    """
)


def scores(result):
    return {item["label"]: item["score"] for item in result}


def assert_same(result, expected):
    assert [item["label"] for item in result] == [item["label"] for item in expected]
    assert np.allclose(list(scores(result).values()), [scores(expected)[k] for k in scores(result)], atol=1e-6)


def test_classifier_folder_classifies_in_a_fresh_process_without_the_package(tmp_path, classifier_dir):
    folder = push_to_hub(classifier_dir, "me/kws", dry_run_dir=tmp_path / "upload", card=CardInfo(results=[KWS_RESULT]))
    assert PIPELINE_FILES <= {p.name for p in folder.iterdir()}
    custom = json.loads((folder / "config.json").read_text())["custom_pipelines"]
    assert custom == {
        "hf-wav2vec2-audio-classification": {
            "impl": "pipeline_audio_classification.HfWav2Vec2AudioClassificationPipeline",
            "pt": ["AutoModelForAudioClassification"],
            "type": "audio",
        }
    }
    np.save(tmp_path / "x16.npy", clip(16000))
    np.save(tmp_path / "x8.npy", clip(8000, seed=1))
    sf.write(tmp_path / "clip.wav", clip(8000, seed=2), 8000)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    (workdir / "check.py").write_text(FRESH_PROCESS_SCRIPT)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    completed = subprocess.run(
        [
            sys.executable,
            "check.py",
            str(folder),
            *(str(tmp_path / n) for n in ("x16.npy", "x8.npy", "clip.wav")),
            str(tmp_path / "out.json"),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((tmp_path / "out.json").read_text())
    assert not result["hf_wav2vec2_loaded"]
    shipped, stock, model_module = result["classes"]
    assert shipped.startswith("transformers_modules") and shipped.endswith(
        "pipeline_audio_classification.HfWav2Vec2AudioClassificationPipeline"
    )
    assert stock == "transformers.pipelines.audio_classification"  # transformers' own class, on our remote model
    assert model_module.startswith("transformers_modules")

    here = pipeline("audio-classification", model=str(folder))  # this package, in this process
    assert type(here) is HfWav2Vec2AudioClassificationPipeline
    assert_same(result["8 kHz"], here({"raw": clip(8000, seed=1), "sampling_rate": 8000}, top_k=None))
    assert_same(result["file"], here(str(tmp_path / "clip.wav"), top_k=2))
    assert_same(result["16 kHz"], here(clip(16000), top_k=None))
    assert_same(result["stock 16 kHz"], result["16 kHz"])  # at the model's rate transformers' pipeline agrees
    assert len({round(s, 4) for s in scores(result["16 kHz"]).values()}) == 4  # distinct scores: the order is real


def metadata(card: str) -> dict:
    return yaml.safe_load(card.split("---")[1])


def test_classifier_card_lists_labels_and_reports_accuracy(classifier_dir, tmp_path):
    folder = push_to_hub(classifier_dir, "me/kws", dry_run_dir=tmp_path / "upload", card=CardInfo(results=[KWS_RESULT]))
    card = (folder / "README.md").read_text()
    meta = metadata(card)
    assert meta["pipeline_tag"] == "audio-classification" and "audio-classification" in meta["tags"]
    assert "automatic-speech-recognition" not in meta["tags"]
    (entry,) = meta["model-index"][0]["results"]
    assert entry["task"]["type"] == "audio-classification"
    assert entry["metrics"] == [{"type": "accuracy", "value": 91.5, "name": "Test Accuracy"}]
    assert "- Labels (4, in id order): `yes`, `no`, `up`, `down`." in card
    assert "| SUPERB keyword spotting (`superb`) | test | 91.5 |" in card and "WER" not in card
    assert 'pipeline(model="me/kws", trust_remote_code=True)' in card
    assert "audio classification (4 labels)" in card


def test_card_results_must_fit_the_head():
    classifier = HfWav2Vec2ForSequenceClassification(tiny_config(**NO_DROPOUT, **HEAD))
    with pytest.raises(PublishError, match="is a classifier, its results need an accuracy"):
        render_model_card(classifier, "me/kws", CardInfo(results=[Result(dataset_type="superb", wer=3.0)]))
    with pytest.raises(PublishError, match="is not a classifier, its results need a WER or CER"):
        render_model_card(HfWav2Vec2ForCTC(tiny_config()), "me/asr", CardInfo(results=[KWS_RESULT]))
    for bad, message in ((dict(accuracy=101), "accuracy is in percent"), (dict(accuracy=90, wer=3), "not both")):
        with pytest.raises(PublishError, match=message):
            Result(dataset_type="superb", **bad)


def test_frame_and_xvector_cards_have_no_wrong_pipeline_tag():
    many = {i: f"spk{i}" for i in range(60)}
    frames = HfWav2Vec2ForAudioFrameClassification(tiny_config(num_labels=60, id2label=many))
    card = render_model_card(frames, "me/diar")
    assert "pipeline_tag" not in metadata(card)
    assert "- Labels (60, in id order): `spk0`, " in card and "`spk49` and 10 more." in card
    assert "AutoModelForAudioFrameClassification.from_pretrained" in card
    card = render_model_card(
        HfWav2Vec2ForXVector(tiny_config(num_labels=3)),
        "me/sv",
        CardInfo(results=[Result(dataset_name="VoxCeleb1", accuracy=88.0)]),
    )
    assert "pipeline_tag" not in metadata(card) and "AutoModelForAudioXVector" in card and "| 88 |" in card


def test_cli_push_accuracy(classifier_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    push_command.add_arguments(parser)
    args = parser.parse_args(
        [
            str(classifier_dir),
            "me/kws",
            "--dry_run",
            str(tmp_path / "up"),
            "--accuracy",
            "87.5",
            "--dataset",
            "superb",
            "--split",
            "validation",
        ]
    )
    assert push_command.run(args) == 0
    meta = metadata((tmp_path / "up" / "README.md").read_text())
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == 87.5


def test_convert_of_a_transformers_classifier_carries_the_pipeline_code(tmp_path):
    import transformers
    from conftest import TINY

    from hf_wav2vec2.convert import convert

    source = tmp_path / "transformers-ks"
    transformers.Wav2Vec2ForSequenceClassification(transformers.Wav2Vec2Config(**TINY, num_labels=3)).save_pretrained(
        source
    )
    transformers.Wav2Vec2FeatureExtractor().save_pretrained(source)
    out = convert(source, tmp_path / "ours")
    assert PIPELINE_FILES <= {p.name for p in out.iterdir()}
    assert "hf-wav2vec2-audio-classification" in json.loads((out / "config.json").read_text())["custom_pipelines"]
    # a head without a pipeline gets no pipeline code
    xvector = tmp_path / "transformers-sv"
    config = transformers.Wav2Vec2Config(
        **TINY, num_labels=3, tdnn_dim=(8, 8), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1), xvector_output_dim=8
    )
    transformers.Wav2Vec2ForXVector(config).save_pretrained(xvector)
    assert "custom_pipelines" not in json.loads((convert(xvector, tmp_path / "sv") / "config.json").read_text())


def test_the_pipeline_task_builds_our_class_in_process(classifier_dir):
    from hf_wav2vec2.pipeline_audio_classification import PIPELINE_TASK

    model = HfWav2Vec2ForSequenceClassification.from_pretrained(classifier_dir)
    classifier = pipeline(PIPELINE_TASK, model=model, feature_extractor=HfWav2Vec2FeatureExtractor())
    assert type(classifier) is HfWav2Vec2AudioClassificationPipeline
    assert sorted(item["label"] for item in classifier(clip(16000), top_k=None)) == sorted(LABELS.values())
