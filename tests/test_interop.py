"""transformers interop, both ways:

* ``save_as_transformers``: the folder it writes loads in plain transformers (no trust_remote_code, no
  hf_wav2vec2), processor and pipeline included, by the same processor path as ``hf-wav2vec2 convert --to
  transformers``;
* transformers-format checkpoints (``model_type: wav2vec2``, every ``facebook/wav2vec2-*``) get this package's ASR
  pipeline by the task name, and 4.5-era pre-training configs that say ``Wav2Vec2Model`` convert as pre-training;
* folders converted to this package's format carry the pipeline code, so remote-code users (without hf_wav2vec2)
  get the same pipeline: soxr resampling instead of torchaudio.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
import transformers
from blocked_package import BLOCK_HF_WAV2VEC2
from conftest import NO_DROPOUT, tiny_config
from transformers import AutomaticSpeechRecognitionPipeline, pipeline

from hf_wav2vec2 import (
    HfWav2Vec2AutomaticSpeechRecognitionPipeline,
    HfWav2Vec2FeatureExtractor,
    HfWav2Vec2ForCTC,
    HfWav2Vec2ForPreTraining,
    HfWav2Vec2Processor,
)
from hf_wav2vec2.convert import convert
from hf_wav2vec2.interop import save_as_transformers, to_transformers_processor
from hf_wav2vec2.tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer

VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, "T": 6, "A": 7, "O": 8, "N": 9, "I": 10, "H": 11}
SR = 16000
# transformers' Wav2Vec2Config of a tiny model on the real 7-layer conv geometry (20 ms frames)
TINY_TRANSFORMERS = dict(
    vocab_size=len(VOCAB),
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
    conv_dim=(8,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=8,
    num_conv_pos_embedding_groups=2,
    codevector_dim=8,
    proj_codevector_dim=8,
    num_codevectors_per_group=4,
    **NO_DROPOUT,
)

PLAIN_TRANSFORMERS = BLOCK_HF_WAV2VEC2 + textwrap.dedent(
    """
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


def run_without_the_package(tmp_path, script, *args):
    """Run ``script`` with ``args`` (plus the path of its JSON output) in a fresh offline process that cannot
    import hf_wav2vec2; returns what it wrote."""
    workdir = tmp_path / "elsewhere"
    workdir.mkdir(exist_ok=True)
    (workdir / "check.py").write_text(script)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    completed = subprocess.run(
        [sys.executable, "check.py", *map(str, args), str(tmp_path / "out.json")],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((tmp_path / "out.json").read_text())


def transformers_ctc_directory(directory):
    """A tiny random transformers Wav2Vec2ForCTC saved with transformers' own processor; returns the model."""
    torch.manual_seed(0)
    model = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**TINY_TRANSFORMERS)).eval()
    directory.mkdir(parents=True)
    (directory / "vocab.json").write_text(json.dumps(VOCAB))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(directory / "vocab.json"))
    model.save_pretrained(directory)
    transformers.Wav2Vec2Processor(transformers.Wav2Vec2FeatureExtractor(), tokenizer).save_pretrained(directory)
    return model


def noise_8k(seconds=1.5, seed=3):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, int(seconds * 8000)).astype(np.float32)


def transcribe_resampled_by_hand(model, processor, clip_8k):
    """What ``model`` says about ``clip_8k`` resampled to 16 kHz with soxr (the pipeline's resampler), greedy."""
    resampled = soxr.resample(clip_8k, 8000, SR, quality="HQ").astype(np.float32)
    with torch.no_grad():
        logits = model(**processor(resampled, sampling_rate=SR, return_tensors="pt")).logits
    return processor.batch_decode(logits.argmax(-1))[0]


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
    result = run_without_the_package(tmp_path, PLAIN_TRANSFORMERS, folder, tmp_path / "audio.npy")
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


# --------------------------------------------------------------------------------------------------------------------
# transformers-format checkpoints in this package
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["directory", "loaded model"])
def test_transformers_checkpoint_gets_our_pipeline_with_soxr_resampling(tmp_path, how):
    """The format of every facebook/wav2vec2-* checkpoint: an 8 kHz clip is resampled with soxr (transformers'
    class would ask for torchaudio) and transcribed exactly as the model transcribes the resampled clip."""
    directory = tmp_path / "facebook-like"
    model = transformers_ctc_directory(directory)
    assert json.loads((directory / "config.json").read_text())["model_type"] == "wav2vec2"
    processor = transformers.Wav2Vec2Processor.from_pretrained(directory)
    if how == "directory":
        asr = pipeline("automatic-speech-recognition", model=str(directory))
    else:
        loaded = transformers.Wav2Vec2ForCTC.from_pretrained(directory).eval()
        asr = pipeline(
            "automatic-speech-recognition",
            model=loaded,
            tokenizer=processor.tokenizer,
            feature_extractor=processor.feature_extractor,
        )
    assert type(asr) is HfWav2Vec2AutomaticSpeechRecognitionPipeline
    assert type(asr.model) is transformers.Wav2Vec2ForCTC  # transformers' model, untouched

    clip_8k = noise_8k()
    expected = transcribe_resampled_by_hand(model, processor, clip_8k)
    assert expected  # the random model says something, so an equal transcript means something
    assert asr({"raw": clip_8k, "sampling_rate": 8000})["text"] == expected
    wav = tmp_path / "clip_8k.wav"
    sf.write(wav, clip_8k, 8000, subtype="FLOAT")
    assert asr(str(wav))["text"] == expected  # a file at 8 kHz, decoded by libsndfile and resampled with soxr


def test_other_asr_model_types_keep_transformers_pipeline(processor):
    """A tiny random Whisper (a seq2seq ASR model) still gets transformers' class, chosen by the task name."""
    whisper = transformers.WhisperForConditionalGeneration(
        transformers.WhisperConfig(
            vocab_size=64,
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_source_positions=1500,
            max_target_positions=32,
            num_mel_bins=80,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
        )
    ).eval()
    pipe = pipeline(
        "automatic-speech-recognition",
        model=whisper,
        tokenizer=processor.tokenizer,  # never decodes
        feature_extractor=transformers.WhisperFeatureExtractor(feature_size=80),
    )
    assert type(pipe) is AutomaticSpeechRecognitionPipeline and pipe.type == "seq2seq_whisper"


@pytest.mark.parametrize("safe_serialization", [True, False], ids=["safetensors", "pytorch_model.bin"])
def test_pretraining_weights_under_a_wav2vec2model_config_convert_as_pretraining(tmp_path, safe_serialization):
    torch.manual_seed(0)
    reference = transformers.Wav2Vec2ForPreTraining(transformers.Wav2Vec2Config(**TINY_TRANSFORMERS)).eval()
    source = tmp_path / "old-transformers"
    reference.save_pretrained(source, safe_serialization=safe_serialization)
    saved = json.loads((source / "config.json").read_text())
    saved["architectures"] = ["Wav2Vec2Model"]  # what transformers 4.5-era pre-training configs say
    (source / "config.json").write_text(json.dumps(saved))

    out = convert(source, tmp_path / "ours")
    assert json.loads((out / "config.json").read_text())["architectures"] == ["HfWav2Vec2ForPreTraining"]
    ours = HfWav2Vec2ForPreTraining.from_pretrained(out).eval()
    ours_state, theirs_state = ours.state_dict(), reference.state_dict()
    for name in ("quantizer.codevectors", "quantizer.weight_proj.weight", "project_q.weight", "project_hid.weight"):
        assert torch.equal(ours_state[name], theirs_state[name]), name
    wav = torch.randn(1, 4000)
    with torch.no_grad():
        difference = ours.wav2vec2(wav).last_hidden_state - reference.wav2vec2(wav).last_hidden_state
    assert difference.abs().max() <= 1e-5


def test_weights_without_the_named_head_are_still_refused(tmp_path):
    # a config that says CTC over weights without the CTC head: no class fits, the missing head is reported
    from hf_wav2vec2.convert import ConversionError

    encoder_only = tmp_path / "encoder"
    transformers_ctc_directory(tmp_path / "ctc").wav2vec2.save_pretrained(encoder_only)
    saved = json.loads((encoder_only / "config.json").read_text())
    saved["architectures"] = ["Wav2Vec2ForCTC"]
    (encoder_only / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ConversionError, match="missing_keys: lm_head"):
        convert(encoder_only, tmp_path / "out")


# --------------------------------------------------------------------------------------------------------------------
# Converted folders carry the pipeline for remote-code users
# --------------------------------------------------------------------------------------------------------------------

REMOTE_CODE_PIPELINE = textwrap.dedent(
    """
    import json, sys
    sys.modules["hf_wav2vec2"] = None  # the package is installed: only the folder's code may be used
    import numpy as np
    from transformers import pipeline

    folder, audio_file, out_file = sys.argv[1:]
    asr = pipeline(model=folder, trust_remote_code=True)  # the task comes from the folder's custom_pipelines
    with open(out_file, "w") as f:
        json.dump({"class": type(asr).__module__ + "." + type(asr).__name__,
                   "text": asr({"raw": np.load(audio_file), "sampling_rate": 8000})["text"]}, f)
    """
)


def test_converted_folder_carries_the_pipeline_for_remote_code_users(tmp_path):
    transformers_ctc_directory(tmp_path / "transformers")
    out = convert(tmp_path / "transformers", tmp_path / "ours")  # the save path of every source format
    assert {"pipeline_hf_wav2vec2.py", "audio.py"} <= {p.name for p in out.iterdir()}
    assert "hf-wav2vec2-asr" in json.loads((out / "config.json").read_text())["custom_pipelines"]

    clip_8k = noise_8k(seed=5)
    expected = transcribe_resampled_by_hand(
        HfWav2Vec2ForCTC.from_pretrained(out).eval(), HfWav2Vec2Processor.from_pretrained(out), clip_8k
    )
    assert expected
    np.save(tmp_path / "clip.npy", clip_8k)
    result = run_without_the_package(tmp_path, REMOTE_CODE_PIPELINE, out, tmp_path / "clip.npy")
    assert result["class"].startswith("transformers_modules")
    assert result["class"].endswith("pipeline_hf_wav2vec2.HfWav2Vec2AutomaticSpeechRecognitionPipeline")
    assert result["text"] == expected


def test_pretraining_conversion_has_no_pipeline_code(tmp_path):
    source = tmp_path / "pre"
    transformers.Wav2Vec2ForPreTraining(transformers.Wav2Vec2Config(**TINY_TRANSFORMERS)).save_pretrained(source)
    out = convert(source, tmp_path / "out")
    assert "pipeline_hf_wav2vec2.py" not in {p.name for p in out.iterdir()}
    assert "custom_pipelines" not in json.loads((out / "config.json").read_text())
