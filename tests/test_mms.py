"""MMS per-language adapters (facebook/mms-1b-all and the like), offline, on tiny random models.

* transformers' format: a transformers ``Wav2Vec2ForCTC`` with ``adapter_attn_dim``, two ``adapter.<lang>`` files
  and a nested vocabulary loads here per language with transformers' logits, switches with ``load_adapter`` and
  exports back;
* the exact shape of mms-1b-all builds (meta device) with transformers' keys and parameter count;
* adapter files: missing / extra keys, wrong shapes, ``.bin`` read with ``weights_only=True``, no overwriting;
* adapter-only fine-tuning touches nothing but adapters and head, and the saved adapter file alone reproduces it;
* transformers' PEFT ``load_adapter`` stays reachable.
"""

import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
import transformers
from conftest import LARGE_LIKE, NO_DROPOUT
from safetensors.torch import load_file, save_file

from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForCTC, HfWav2Vec2Model, HfWav2Vec2Processor, adapters_hf_wav2vec2
from hf_wav2vec2.interop import save_as_transformers

ADAPTER_DIM = 8
ENG = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, "T": 6, "A": 7, "O": 8, "N": 9, "I": 10, "H": 11}
SPA = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5, "E": 6, "Ñ": 7, "O": 8}
VOCABS = {"eng": ENG, "spa": SPA}


def transformers_config(**overrides):
    return transformers.Wav2Vec2Config(**dict(LARGE_LIKE, **NO_DROPOUT, adapter_attn_dim=ADAPTER_DIM, **overrides))


def random_adapter(model, vocab_size, scale=0.3):
    """An adapter file's content for ``model`` (transformers' or ours): random adapters and a head of vocab_size."""
    state = {k: torch.randn(v.shape) * scale for k, v in model._get_adapters().items() if not k.startswith("lm_head")}
    state["lm_head.weight"] = torch.randn(vocab_size, model.config.hidden_size) * scale
    state["lm_head.bias"] = torch.randn(vocab_size) * scale
    return state


@pytest.fixture
def mms_dir(tmp_path):
    """A transformers-format MMS folder: weights holding the English adapter, adapter.eng / adapter.spa files,
    a nested vocab.json with target_lang eng."""
    folder = tmp_path / "mms"
    theirs = transformers.Wav2Vec2ForCTC(transformers_config()).eval()
    adapters = {lang: random_adapter(theirs, len(vocab)) for lang, vocab in VOCABS.items()}
    theirs.load_state_dict(adapters["eng"], strict=False)  # as mms-1b-all: model.safetensors is English
    theirs.save_pretrained(folder)
    for lang, state in adapters.items():
        save_file(state, str(folder / f"adapter.{lang}.safetensors"))
    (folder / "vocab.json").write_text(json.dumps(VOCABS))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), target_lang="eng")
    processor = transformers.Wav2Vec2Processor(
        feature_extractor=transformers.Wav2Vec2FeatureExtractor(return_attention_mask=True), tokenizer=tokenizer
    )
    processor.save_pretrained(folder)
    return folder


def logits(model, x):
    with torch.no_grad():
        return model.eval()(x).logits


# ------------------------------------------------------------------ transformers' MMS format


def test_each_language_loads_with_transformers_logits_and_switches(mms_dir):
    x = torch.randn(2, 4000)
    for lang, vocab in VOCABS.items():
        theirs = transformers.Wav2Vec2ForCTC.from_pretrained(mms_dir, target_lang=lang)
        ours = HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang=lang)
        assert ours.target_lang == lang and ours.config.vocab_size == len(vocab) == ours.lm_head.out_features
        torch.testing.assert_close(logits(ours, x), logits(theirs, x), atol=1e-5, rtol=0)
    # without target_lang: the weights as saved (English), like transformers
    plain = HfWav2Vec2ForCTC.from_pretrained(mms_dir)
    assert plain.target_lang is None and plain.config.adapter_attn_dim == ADAPTER_DIM
    torch.testing.assert_close(
        logits(plain, x), logits(transformers.Wav2Vec2ForCTC.from_pretrained(mms_dir), x), atol=1e-5, rtol=0
    )
    # switching in place: spa, then back to eng, equals a fresh load of each
    model = HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="eng")
    model.load_adapter("spa")
    assert model.config.vocab_size == len(SPA)
    spa = HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="spa")
    torch.testing.assert_close(logits(model, x), logits(spa, x))
    model.load_adapter("eng")
    torch.testing.assert_close(logits(model, x), logits(plain, x))


def test_processor_and_model_switch_language_together(mms_dir):
    processor = HfWav2Vec2Processor.from_pretrained(mms_dir)
    assert processor.tokenizer.target_lang == "eng" and processor.tokenizer.vocab_size == len(ENG)
    processor.tokenizer.set_target_lang("spa")
    model = HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="spa")
    assert processor.tokenizer.vocab_size == model.config.vocab_size
    assert processor.tokenizer.decode([7, 7, 0, 5]) == "ÑA"
    processor.save_pretrained(mms_dir / "saved")
    saved = json.loads((mms_dir / "saved" / "tokenizer_config.json").read_text())
    assert saved["target_lang"] == "spa"
    assert json.loads((mms_dir / "saved" / "vocab.json").read_text()) == VOCABS  # every language kept


def test_export_to_transformers_keeps_every_language(mms_dir, tmp_path):
    model = HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="spa")
    with torch.no_grad():  # an in-memory change of the loaded language must be what is exported for it
        model.wav2vec2.encoder.layers[0].adapter_layer.linear_2.bias.add_(0.5)
    out = save_as_transformers(model, tmp_path / "export", HfWav2Vec2Processor.from_pretrained(mms_dir))
    assert {"adapter.eng.safetensors", "adapter.spa.safetensors"} <= {p.name for p in out.iterdir()}
    x = torch.randn(1, 4000)
    theirs_spa = transformers.Wav2Vec2ForCTC.from_pretrained(out, target_lang="spa")
    torch.testing.assert_close(logits(theirs_spa, x), logits(model, x), atol=1e-5, rtol=0)
    theirs_eng = transformers.Wav2Vec2ForCTC.from_pretrained(out, target_lang="eng")
    torch.testing.assert_close(
        logits(theirs_eng, x),
        logits(HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="eng"), x),
        atol=1e-5,
        rtol=0,
    )
    assert transformers.Wav2Vec2Processor.from_pretrained(out).tokenizer.target_lang == "eng"


def test_mms_1b_all_shape_builds_with_transformers_keys_and_parameter_count():
    # facebook/mms-1b-all: XLS-R 1B geometry (48 x 1280, 16 heads, FFN 5120, layer-norm conv stack with bias,
    # pre-LN), adapters of width 16, the English head of 154 tokens
    shape = dict(
        hidden_size=1280,
        num_hidden_layers=48,
        num_attention_heads=16,
        intermediate_size=5120,
        feat_extract_norm="layer",
        conv_bias=True,
        do_stable_layer_norm=True,
        adapter_attn_dim=16,
        vocab_size=154,
        mask_time_prob=0.05,
    )
    with torch.device("meta"):
        theirs = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**shape))
        ours = HfWav2Vec2ForCTC(HfWav2Vec2Config.from_transformers_config(theirs.config))
    theirs_shapes = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert ours_shapes == theirs_shapes
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in theirs.parameters())
    assert 9.6e8 < count < 9.7e8  # "1B"
    adapter = sum(p.numel() for k, p in ours._get_adapters().items() if not k.startswith("lm_head"))
    assert adapter == 48 * (2 * 1280 + 1280 * 16 + 16 + 16 * 1280 + 1280)  # about 2M per language
    assert set(ours._get_adapters()) == set(theirs._get_adapters())


@pytest.fixture
def ours_mms_dir(mms_dir, tmp_path):
    """mms_dir in this package's format: our tokenizer (transformers' leaks <s> into CTC text), same adapters."""
    folder = tmp_path / "ours"
    HfWav2Vec2ForCTC.from_pretrained(mms_dir).save_pretrained(folder)
    HfWav2Vec2Processor.from_pretrained(mms_dir).save_pretrained(folder)
    for lang in VOCABS:
        HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang=lang).save_adapter(folder)
    return folder


def spanish_transcript(folder, audio):
    model = HfWav2Vec2ForCTC.from_pretrained(folder, target_lang="spa")
    tokenizer = HfWav2Vec2Processor.from_pretrained(folder).tokenizer
    tokenizer.set_target_lang("spa")
    return tokenizer.decode(logits(model, torch.from_numpy((audio - audio.mean()) / audio.std())[None]).argmax(-1)[0])


def test_cli_transcribe_and_evaluate_take_the_language(ours_mms_dir, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from hf_wav2vec2 import cli

    audio = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    sf.write(str(tmp_path / "clip.wav"), audio, 16000, subtype="FLOAT")
    expected = spanish_transcript(ours_mms_dir, audio)
    assert (
        cli.main(
            [
                "transcribe",
                str(tmp_path / "clip.wav"),
                "--model",
                str(ours_mms_dir),
                "--lang",
                "spa",
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)[0]["text"] == expected
    (tmp_path / "list.tsv").write_text(f"{tmp_path / 'clip.wav'}\t{expected}\n")
    assert (
        cli.main(
            [
                "evaluate",
                str(tmp_path / "list.tsv"),
                "--model",
                str(ours_mms_dir),
                "--lang",
                "spa",
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["cer"] == 0.0


def test_pipeline_loads_the_language_with_its_vocabulary(ours_mms_dir, tmp_path):
    import numpy as np

    from hf_wav2vec2.transcribe import ModelLoadError, asr_pipeline

    folder = ours_mms_dir
    audio = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    model = HfWav2Vec2ForCTC.from_pretrained(folder, target_lang="spa")
    tokenizer = HfWav2Vec2Processor.from_pretrained(folder).tokenizer
    tokenizer.set_target_lang("spa")
    ids = logits(model, torch.from_numpy((audio - audio.mean()) / audio.std())[None]).argmax(-1)[0]
    expected = tokenizer.decode(ids)
    assert expected and set(expected) <= set("AEÑO ")  # Spanish letters: decoded with the Spanish vocabulary
    assert HfWav2Vec2Processor.from_pretrained(folder).tokenizer.target_lang == "eng"  # saved in English
    by_task = transformers.pipeline(
        "automatic-speech-recognition", model=str(folder), model_kwargs={"target_lang": "spa"}
    )
    for asr in (by_task, asr_pipeline(folder, target_lang="spa")):
        assert asr.model.target_lang == "spa" and asr.tokenizer.target_lang == "spa"
        assert asr(audio)["text"] == expected
    with pytest.raises(ModelLoadError, match=r"no adapter\.deu\.safetensors or adapter\.deu\.bin .*it has: eng, spa"):
        asr_pipeline(folder, target_lang="deu")
    with pytest.raises(ValueError, match="target_lang= needs a model directory or Hub id"):
        asr_pipeline(model, target_lang="spa")
    import soundfile as sf

    from hf_wav2vec2.transcribe import evaluate_model

    sf.write(str(tmp_path / "clip.wav"), audio, 16000, subtype="FLOAT")  # the same samples as above
    scored = evaluate_model(folder, [tmp_path / "clip.wav"], [expected], target_lang="spa")
    assert scored.hypotheses == [expected.lower()] and scored.cer == 0.0


# ------------------------------------------------------------------ adapter files


def test_adapter_file_errors_name_the_problem(mms_dir):
    model = HfWav2Vec2ForCTC.from_pretrained(mms_dir)
    with pytest.raises(
        FileNotFoundError,
        match=r"no adapter\.deu\.safetensors or adapter\.deu\.bin .*adapters "
        r"there: eng, spa",
    ):
        model.load_adapter("deu")
    state = load_file(str(mms_dir / "adapter.spa.safetensors"))
    key = "wav2vec2.encoder.layers.1.adapter_layer.norm.bias"
    save_file({k: v for k, v in state.items() if k != key}, str(mms_dir / "adapter.cut.safetensors"))
    with pytest.raises(ValueError, match=rf"adapter\.cut\.safetensors: .*missing keys {key}$"):
        model.load_adapter("cut")
    save_file(dict(state, **{"wav2vec2.extra.weight": torch.zeros(1)}), str(mms_dir / "adapter.more.safetensors"))
    with pytest.raises(ValueError, match=r"unexpected keys wav2vec2\.extra\.weight"):
        model.load_adapter("more")
    wide = dict(state, **{"wav2vec2.encoder.layers.0.adapter_layer.linear_1.weight": torch.zeros(4, 32)})
    save_file(wide, str(mms_dir / "adapter.wide.safetensors"))
    with pytest.raises(ValueError, match=r"linear_1\.weight has shape \(4, 32\), the model \(8, 32\)"):
        model.load_adapter("wide")
    for bad in ("", " spa", ".spa", None):
        with pytest.raises(ValueError, match="load_adapter: target_lang"):
            model.load_adapter(bad)
    assert model.target_lang is None and model.config.vocab_size == len(ENG)  # nothing half-loaded
    plain = HfWav2Vec2ForCTC(HfWav2Vec2Config(**dict(LARGE_LIKE, **NO_DROPOUT)))
    with pytest.raises(ValueError, match=r"no MMS adapters \(config\.adapter_attn_dim is None\)"):
        plain.load_adapter("spa")
    with pytest.raises(ValueError, match="has no adapter layers"):
        plain.adapter_state_dict()


def test_bin_adapters_load_with_weights_only(mms_dir):
    state = load_file(str(mms_dir / "adapter.spa.safetensors"))
    torch.save(state, mms_dir / "adapter.xyz.bin")
    model = HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="xyz")
    x = torch.randn(1, 4000)
    spa = HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="spa")
    torch.testing.assert_close(logits(model, x), logits(spa, x))

    class Payload:  # unpickling this would run code: weights_only refuses it
        def __reduce__(self):
            return (print, ("unpickled!",))

    with open(mms_dir / "adapter.evil.bin", "wb") as handle:
        pickle.dump({"lm_head.weight": Payload()}, handle, protocol=2)
    with pytest.raises(ValueError, match=r"adapter\.evil\.bin: not a plain tensor file \(read with weights_only"):
        model.load_adapter("evil")


def test_save_adapter_writes_exactly_the_adapter_keys_and_keeps_existing_files(mms_dir, tmp_path):
    model = HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="spa")
    path = model.save_adapter(tmp_path / "out")
    assert path.name == "adapter.spa.safetensors"
    saved = load_file(str(path))
    assert set(saved) == set(model._get_adapters()) == set(load_file(str(mms_dir / "adapter.spa.safetensors")))
    for key, value in model.adapter_state_dict().items():
        assert torch.equal(saved[key], value)
    with pytest.raises(FileExistsError, match="adapter.spa.safetensors exists; pass overwrite=True"):
        model.save_adapter(tmp_path / "out")
    model.save_adapter(tmp_path / "out", overwrite=True)
    assert model.save_adapter(tmp_path / "out", "xx", safe_serialization=False).name == "adapter.xx.bin"
    with pytest.raises(ValueError, match="save_adapter: pass target_lang"):
        HfWav2Vec2ForCTC.from_pretrained(mms_dir).save_adapter(tmp_path / "out")


def test_bare_encoder_loads_a_language_from_the_ctc_files(mms_dir):
    ctc = HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="spa").eval()
    encoder = HfWav2Vec2Model.from_pretrained(mms_dir, target_lang="spa").eval()
    x = torch.randn(1, 4000)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x).last_hidden_state, ctc.wav2vec2(x).last_hidden_state)


def test_remote_code_loads_a_language_without_the_package(mms_dir, tmp_path):
    model = HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="spa")
    folder = tmp_path / "ours"
    model.save_pretrained(folder)
    model.save_adapter(folder)
    model.load_adapter("eng")
    model.save_adapter(folder)
    x = torch.randn(1, 4000)
    torch.save(x, tmp_path / "x.pt")
    torch.save(logits(HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="spa"), x), tmp_path / "spa.pt")
    script = textwrap.dedent(
        f"""
        import sys, torch
        sys.modules["hf_wav2vec2"] = None  # only the folder's code may be used
        from transformers import AutoModelForCTC
        model = AutoModelForCTC.from_pretrained({str(folder)!r}, trust_remote_code=True, target_lang="eng")
        model.load_adapter("spa")
        assert type(model).__module__.startswith("transformers_modules") and model.target_lang == "spa"
        with torch.no_grad():
            diff = (model.eval()(torch.load({str(tmp_path / "x.pt")!r})).logits
                    - torch.load({str(tmp_path / "spa.pt")!r})).abs().max().item()
        assert diff <= 1e-6, diff
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


# ------------------------------------------------------------------ adapter-only fine-tuning


def test_adapter_only_training_changes_only_adapters_and_the_saved_file_reproduces_it(mms_dir, tmp_path):
    model = HfWav2Vec2ForCTC.from_pretrained(mms_dir)
    model.init_adapter_layers()
    for key, param in model._get_adapters().items():
        if key.endswith("norm.weight"):
            assert torch.equal(param, torch.ones_like(param))
        elif key.endswith("bias"):
            assert torch.equal(param, torch.zeros_like(param))
    trainable = model.freeze_all_but_adapters()
    assert {k for k, p in model.named_parameters() if p.requires_grad} == set(trainable) == set(model._get_adapters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    x, labels = torch.randn(2, 4000), torch.tensor([[5, 6, 7], [8, 9, -100]])
    for _ in range(3):
        model(x, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == set(trainable)  # every adapter and head tensor moved, nothing else by a single bit
    # the adapter file alone, dropped beside the untouched base model, reproduces the fine-tuned model
    model.save_adapter(mms_dir, "xyz")
    reloaded = HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="xyz")
    x = torch.randn(1, 4000)
    assert torch.equal(logits(reloaded, x), logits(model, x))


def test_freeze_base_model_freezes_adapters_too_as_in_transformers(mms_dir):
    ours, theirs = HfWav2Vec2ForCTC.from_pretrained(mms_dir), transformers.Wav2Vec2ForCTC.from_pretrained(mms_dir)
    for model in (ours, theirs):
        model.freeze_base_model()
    trainable = [{k for k, p in m.named_parameters() if p.requires_grad} for m in (ours, theirs)]
    assert trainable[0] == trainable[1] == {"lm_head.weight", "lm_head.bias"}


# ------------------------------------------------------------------ PEFT's load_adapter


def test_peft_adapters_stay_reachable(mms_dir, monkeypatch):
    model = HfWav2Vec2ForCTC.from_pretrained(mms_dir)
    monkeypatch.setattr(adapters_hf_wav2vec2, "peft_available", lambda: False)
    with pytest.raises(ImportError, match=r"load_adapter\('\.\./spa'\): .*needs the peft package"):
        model.load_adapter("../spa")  # a path: PEFT's meaning, and PEFT is not installed
    monkeypatch.setattr(adapters_hf_wav2vec2, "peft_available", lambda: True)
    calls = []
    monkeypatch.setattr(
        transformers.integrations.PeftAdapterMixin,
        "load_adapter",
        lambda self, *args, **kwargs: calls.append((args, kwargs)) or "peft",
    )
    assert model.load_peft_adapter("someone/lora", adapter_name="a") == "peft"
    assert model.load_adapter("someone/lora") == "peft"  # a Hub id is no language
    assert model.load_adapter("lora-dir", adapter_name="b") == "peft"  # PEFT's keywords
    (mms_dir / "lora").mkdir()
    assert model.load_adapter(str(mms_dir / "lora")) == "peft"  # a directory
    assert calls == [
        (("someone/lora",), {"adapter_name": "a"}),
        (("someone/lora",), {}),
        (("lora-dir",), {"adapter_name": "b"}),
        ((str(mms_dir / "lora"),), {}),
    ]
    model.load_adapter("spa")  # a language id is MMS's
    assert model.target_lang == "spa" and len(calls) == 4


# ------------------------------------------------------------------ examples/finetune_ctc.py --adapter_lang


@pytest.fixture
def multilingual_base(tmp_path):
    """A pre-LN CTC model of this package with adapters, an English adapter file and a nested vocabulary."""
    base = tmp_path / "base"
    model = HfWav2Vec2ForCTC(HfWav2Vec2Config(**dict(LARGE_LIKE, **NO_DROPOUT, adapter_attn_dim=ADAPTER_DIM)))
    model.save_pretrained(base)
    model.save_adapter(base, "eng")
    (base / "vocab.json").write_text(json.dumps({"eng": ENG}))
    transformers.Wav2Vec2CTCTokenizer(str(base / "vocab.json"), target_lang="eng").save_pretrained(base)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(base)
    return base


def test_adapter_only_finetuning_run_writes_a_language_beside_the_base(multilingual_base, tmp_path):
    import numpy as np
    import soundfile as sf
    from test_finetune_ctc import RATE, WORDS, common_args, tone_speech

    from hf_wav2vec2.training.finetune import main

    corpus, rng, rows = tmp_path / "tones", np.random.default_rng(0), ["file,text"]
    corpus.mkdir()
    for index in range(8):
        text = " ".join(rng.choice(WORDS, size=2))
        sf.write(str(corpus / f"u{index}.wav"), tone_speech(text, rng), RATE)
        rows.append(f"u{index}.wav,{text}")
    (corpus / "metadata.csv").write_text("\n".join(rows) + "\n")
    base_weights = load_file(str(multilingual_base / "model.safetensors"))
    out = tmp_path / "spa"
    main(
        [
            "--model_name_or_path",
            str(multilingual_base),
            "--train_dir",
            str(corpus),
            "--adapter_lang",
            "spa",
            "--save_adapter_beside_base",
            "true",
            *common_args(out, 6),
        ]
    )
    tuned = load_file(str(out / "model.safetensors"))
    adapter_keys = set(load_file(str(multilingual_base / "adapter.spa.safetensors")))
    assert adapter_keys == set(load_file(str(multilingual_base / "adapter.eng.safetensors")))
    assert set(base_weights) - set(tuned) == {"wav2vec2.masked_spec_embed"}  # the run masks nothing (common_args)
    for key in set(tuned) - adapter_keys:
        assert torch.equal(tuned[key], base_weights[key]), key  # the base did not move by a single bit
    assert any(not torch.equal(tuned[k], base_weights[k]) for k in adapter_keys if k in base_weights)
    # the adapter file alone, beside the base, gives the fine-tuned model
    x = torch.randn(1, 4000)
    assert torch.equal(
        logits(HfWav2Vec2ForCTC.from_pretrained(multilingual_base, target_lang="spa"), x),
        logits(HfWav2Vec2ForCTC.from_pretrained(out), x),
    )
    # both folders are multilingual now; the base's English is untouched in either
    english = logits(HfWav2Vec2ForCTC.from_pretrained(multilingual_base, target_lang="eng"), x)
    assert torch.equal(logits(HfWav2Vec2ForCTC.from_pretrained(out, target_lang="eng"), x), english)
    for folder in (multilingual_base, out):
        assert set(json.loads((folder / "vocab.json").read_text())) == {"eng", "spa"}
    processor = HfWav2Vec2Processor.from_pretrained(out)
    assert processor.tokenizer.target_lang == "spa" and set(processor.tokenizer.get_vocab()) >= set("abcde")
    # a second run for the same language keeps what is there
    with pytest.raises(ValueError, match=r"adapter\.spa\.safetensors exists and is kept"):
        main(
            [
                "--model_name_or_path",
                str(multilingual_base),
                "--train_dir",
                str(corpus),
                "--adapter_lang",
                "spa",
                "--save_adapter_beside_base",
                "true",
                *common_args(tmp_path / "again", 1),
            ]
        )
    with pytest.raises(ValueError, match="--freeze_finetune_updates and --adapter_lang conflict"):
        main(
            [
                "--model_name_or_path",
                str(multilingual_base),
                "--train_dir",
                str(corpus),
                "--adapter_lang",
                "fra",
                "--freeze_finetune_updates",
                "2",
                *common_args(tmp_path / "again", 1),
            ]
        )


# ------------------------------------------------------------------ fairseq MMS checkpoints (layer_type=trf_adp)


def fairseq_mms_checkpoint(tmp_path, **changes):
    """A synthetic fine-tuned fairseq MMS checkpoint: LARGE-like (pre-LN), two stacked AdapterFast adapters per
    layer named by the task's multi_corpus_keys."""
    import test_convert_fairseq as fs

    hp = fs.LARGE_FS
    sd = fs.random_fairseq_weights(hp, fine_tuned=True, vocab_size=4 + len(fs.LETTERS))
    gen = torch.Generator().manual_seed(3)
    dim = hp["encoder_embed_dim"]
    for layer in range(hp["encoder_layers"]):
        prefix = f"w2v_encoder.w2v_model.encoder.layers.{layer}.adapter_layer"
        shapes = (
            ("W_a", (ADAPTER_DIM, dim), 0),
            ("b_a", (ADAPTER_DIM,), 0),
            ("W_b", (dim, ADAPTER_DIM), 0),
            ("b_b", (dim,), 0),
            ("ln_W", (dim,), 1),
            ("ln_b", (dim,), 0),
        )
        for name, shape, offset in shapes:
            sd[f"{prefix}.{name}"] = offset + 0.3 * torch.randn(2, *shape, generator=gen)
    adapters = dict(layer_type="trf_adp", adp_num=2, adp_dim=ADAPTER_DIM, adp_act_fn="relu", adp_trf_idx="all")
    checkpoint = fs.cfg_checkpoint(hp, sd, fine_tuned=True, **dict(adapters, **changes))
    checkpoint["cfg"]["task"]["multi_corpus_keys"] = "eng,spa"
    return fs.save(tmp_path, checkpoint), fs.write_dictionary(tmp_path / "dict.ltr.txt"), sd, hp


def fairseq_mms_logits(sd, hp, wav, k, monkeypatch):
    """fairseq's forward with adapter k: TransformerSentenceEncoderWithAdapterLayer adds AdapterFast(x, k)."""
    import test_convert_fairseq as fs

    layer = fs.fs_encoder_layer

    def with_adapter(weights, name, x, hp):
        x = layer(weights, name, x, hp)
        a = f"{name}.adapter_layer"
        h = F.layer_norm(x, (x.shape[-1],), weights[f"{a}.ln_W"][k], weights[f"{a}.ln_b"][k])
        h = F.relu(F.linear(h, weights[f"{a}.W_a"][k], weights[f"{a}.b_a"][k]))
        return x + F.linear(h, weights[f"{a}.W_b"][k], weights[f"{a}.b_b"][k])

    monkeypatch.setattr(fs, "fs_encoder_layer", with_adapter)
    context, _ = fs.fs_context(sd, hp, wav, p="w2v_encoder.w2v_model.")
    monkeypatch.setattr(fs, "fs_encoder_layer", layer)
    return fs.fs_linear(sd, "w2v_encoder.proj", context)


def test_fairseq_mms_checkpoint_converts_every_adapter(tmp_path, monkeypatch):
    from hf_wav2vec2.convert.fairseq import load_fairseq_model

    path, dictionary, sd, hp = fairseq_mms_checkpoint(tmp_path)
    wav = torch.randn(2, 1600)
    converted = load_fairseq_model(path, dictionary)
    assert converted.model.target_lang == "eng" and set(converted.adapters) == {"eng", "spa"}
    assert converted.model.config.adapter_attn_dim == ADAPTER_DIM
    torch.testing.assert_close(
        logits(converted.model, wav), fairseq_mms_logits(sd, hp, wav, 0, monkeypatch), atol=1e-5, rtol=0
    )
    out = converted.save_pretrained(tmp_path / "out")
    spa = HfWav2Vec2ForCTC.from_pretrained(out, target_lang="spa")
    torch.testing.assert_close(logits(spa, wav), fairseq_mms_logits(sd, hp, wav, 1, monkeypatch), atol=1e-5, rtol=0)
    assert set(load_file(str(out / "adapter.spa.safetensors"))) == set(spa._get_adapters())
    chosen = load_fairseq_model(path, dictionary, target_lang="spa").model
    torch.testing.assert_close(logits(chosen, wav), logits(spa, wav))
    from hf_wav2vec2.convert import ConversionError

    with pytest.raises(ConversionError, match="target_lang 'deu' is not one of the checkpoint's adapters: eng, spa"):
        load_fairseq_model(path, dictionary, target_lang="deu")
    for change, message in ((dict(adp_trf_idx="0:1"), r"adp_trf_idx='0:1'"), (dict(adp_act_fn="gelu"), "ReLU")):
        bad, bad_dict, *_ = fairseq_mms_checkpoint(tmp_path, **change)
        with pytest.raises(ConversionError, match=message):
            load_fairseq_model(bad, bad_dict)


@pytest.mark.parametrize("target", ["hf_wav2vec2", "transformers"])
def test_convert_keeps_every_language(mms_dir, tmp_path, target):
    from hf_wav2vec2.convert import convert

    source = mms_dir if target == "hf_wav2vec2" else convert(mms_dir, tmp_path / "ours")  # transformers -> ours -> it
    out = convert(source, tmp_path / target, target=target)
    assert {p.name for p in out.glob("adapter.*.safetensors")} == {"adapter.eng.safetensors", "adapter.spa.safetensors"}
    wav = torch.randn(1, 1600)
    for lang in VOCABS:
        reference = transformers.Wav2Vec2ForCTC.from_pretrained(mms_dir, target_lang=lang)
        converted = (HfWav2Vec2ForCTC if target == "hf_wav2vec2" else transformers.Wav2Vec2ForCTC).from_pretrained(
            out, target_lang=lang
        )
        torch.testing.assert_close(logits(converted, wav), logits(reference, wav), atol=1e-5, rtol=0)


def test_convert_of_a_fairseq_mms_checkpoint_writes_every_adapter(tmp_path):
    from hf_wav2vec2.convert import convert

    path, dictionary, *_ = fairseq_mms_checkpoint(tmp_path)
    out = convert(path, tmp_path / "out", dict_path=dictionary)
    assert {p.name for p in out.glob("adapter.*.safetensors")} == {"adapter.eng.safetensors", "adapter.spa.safetensors"}
    assert HfWav2Vec2ForCTC.from_pretrained(out, target_lang="spa").target_lang == "spa"


def test_push_uploads_every_language_and_never_deletes_remote_adapters(mms_dir, ours_mms_dir, tmp_path):
    from hf_wav2vec2.hub import STALE_REMOTE_FILES, push_to_hub

    folder = push_to_hub(ours_mms_dir, "me/mms-tiny", dry_run_dir=tmp_path / "upload")
    assert {p.name for p in folder.glob("adapter.*.safetensors")} == {
        "adapter.eng.safetensors",
        "adapter.spa.safetensors",
    }
    from fnmatch import fnmatch

    assert not any(fnmatch("adapter.fra.safetensors", pattern) for pattern in STALE_REMOTE_FILES)
    assert any(fnmatch("model.safetensors", pattern) for pattern in STALE_REMOTE_FILES)
    spa = HfWav2Vec2ForCTC.from_pretrained(folder, target_lang="spa")
    wav = torch.randn(1, 1600)
    torch.testing.assert_close(
        logits(spa, wav), logits(HfWav2Vec2ForCTC.from_pretrained(mms_dir, target_lang="spa"), wav)
    )
