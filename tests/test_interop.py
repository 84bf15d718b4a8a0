"""save_as_transformers: the folder it writes loads in plain transformers (no trust_remote_code, no hf_wav2vec2),
processor and pipeline included, and it takes the same processor path as ``hf-wav2vec2 convert --to transformers``."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import transformers
from conftest import NO_DROPOUT, tiny_config

from hf_wav2vec2 import (
    HfWav2Vec2FeatureExtractor,
    HfWav2Vec2ForCTC,
    HfWav2Vec2ForPreTraining,
    HfWav2Vec2Processor,
)
from hf_wav2vec2.convert import convert
from hf_wav2vec2.interop import save_as_transformers, to_transformers_processor
from hf_wav2vec2.tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer

VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, "T": 6, "A": 7, "O": 8, "N": 9, "I": 10, "H": 11}

PLAIN_TRANSFORMERS = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class BlockPackage(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "hf_wav2vec2":
                raise ImportError("hf_wav2vec2 is blocked in this process")
            return None

    sys.meta_path.insert(0, BlockPackage())
    import numpy as np
    import torch
    from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor, pipeline

    folder, audio_file, out_file = sys.argv[1:]
    audio = np.load(audio_file)
    processor = Wav2Vec2Processor.from_pretrained(folder)  # no trust_remote_code
    model = Wav2Vec2ForCTC.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = model(**processor(audio, sampling_rate=16000, return_tensors="pt")).logits
    asr = pipeline("automatic-speech-recognition", model=folder)  # no trust_remote_code
    with open(out_file, "w") as f:
        json.dump({
            "processor": [type(processor).__module__, type(processor.tokenizer).__name__],
            "logits": logits[0].tolist(), "by_hand": processor.batch_decode(logits.argmax(-1))[0],
            "pipeline": asr(audio)["text"],
            "pipeline_class": type(asr).__module__,
            "hf_wav2vec2_loaded": any(m.split(".")[0] == "hf_wav2vec2" for m in sys.modules),
        }, f)
    """
)


@pytest.fixture
def processor(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps(VOCAB))
    tokenizer = HfWav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), do_lower_case=True)
    return HfWav2Vec2Processor(HfWav2Vec2FeatureExtractor(return_attention_mask=True), tokenizer)


def test_saved_folder_loads_in_plain_transformers_without_the_package(tmp_path, processor):
    model = HfWav2Vec2ForCTC(tiny_config(**NO_DROPOUT)).eval()
    folder = save_as_transformers(model, tmp_path / "for-transformers", processor)
    for name in ("processor_config.json", "tokenizer_config.json", "preprocessor_config.json"):
        if (folder / name).is_file():
            assert "auto_map" not in json.loads((folder / name).read_text()), name
    assert not any(p.suffix == ".py" for p in folder.iterdir())  # nothing needs remote code

    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32)
    with torch.no_grad():
        logits = model(**processor(audio=audio, sampling_rate=16000, return_tensors="pt")).logits

    np.save(tmp_path / "audio.npy", audio)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    (workdir / "check.py").write_text(PLAIN_TRANSFORMERS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    completed = subprocess.run(
        [sys.executable, "check.py", str(folder), str(tmp_path / "audio.npy"), str(tmp_path / "out.json")],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((tmp_path / "out.json").read_text())
    assert not result["hf_wav2vec2_loaded"]
    assert result["processor"] == ["transformers.models.wav2vec2.processing_wav2vec2", "Wav2Vec2CTCTokenizer"]
    assert result["pipeline_class"] == "transformers.pipelines.automatic_speech_recognition"
    assert (torch.tensor(result["logits"]) - logits[0]).abs().max() <= 1e-5
    assert result["by_hand"]  # the random model says something, so equal transcripts mean something
    assert result["pipeline"] == result["by_hand"]


def test_same_processor_files_as_the_convert_command(tmp_path, processor):
    model = HfWav2Vec2ForCTC(tiny_config(**NO_DROPOUT)).eval()
    ours = tmp_path / "ours"
    model.save_pretrained(ours)
    processor.save_pretrained(ours)
    converted = convert(ours, tmp_path / "converted", target="transformers")
    saved = save_as_transformers(model, tmp_path / "saved", processor)
    names = sorted(p.name for p in converted.iterdir())
    assert names == sorted(p.name for p in saved.iterdir())
    for name in names:
        if name.endswith(".json") and name != "config.json":
            assert json.loads((converted / name).read_text()) == json.loads((saved / name).read_text()), name
    theirs = transformers.Wav2Vec2Processor.from_pretrained(saved)
    assert theirs.tokenizer.do_lower_case and theirs.feature_extractor.return_attention_mask
    assert theirs.tokenizer.get_vocab() == VOCAB


def test_feature_extractor_alone_and_transformers_processors(tmp_path):
    model = HfWav2Vec2ForPreTraining(tiny_config(variant="large")).eval()
    folder = save_as_transformers(model, tmp_path / "pre", HfWav2Vec2FeatureExtractor(do_normalize=False))
    config = json.loads((folder / "preprocessor_config.json").read_text())
    assert config["feature_extractor_type"] == "Wav2Vec2FeatureExtractor" and config["do_normalize"] is False
    assert "auto_map" not in config
    theirs = transformers.Wav2Vec2FeatureExtractor(do_normalize=False)
    assert to_transformers_processor(theirs) is theirs  # transformers' own objects are kept as they are
    with pytest.raises(TypeError, match="wav2vec 2.0 processor or feature extractor, got str"):
        save_as_transformers(model, tmp_path / "bad", "not a processor")
    assert not (tmp_path / "bad").exists()  # nothing written for a bad processor
