"""Publishing (offline): the dry-run upload folder, loading it with trust_remote_code in a fresh process that cannot
import hf_wav2vec2, the model card's Hub metadata, and the upload calls (HfApi monkeypatched)."""

import argparse
import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from blocked_package import BLOCK_HF_WAV2VEC2
from conftest import NO_DROPOUT, tiny_config
from huggingface_hub import ModelCard, metadata_load
from transformers import pipeline
from transformers.dynamic_module_utils import get_relative_import_files

from hf_wav2vec2 import (
    HfWav2Vec2AutomaticSpeechRecognitionPipeline,
    HfWav2Vec2ForCTC,
    HfWav2Vec2ForPreTraining,
)
from hf_wav2vec2.cli import push as push_command
from hf_wav2vec2.cli.common import CommandError
from hf_wav2vec2.feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
from hf_wav2vec2.hub import (
    TEMPLATE_PATH,
    CardInfo,
    PublishError,
    Result,
    card_metadata,
    check_upload_folder,
    describe_architecture,
    fill_template,
    push_to_hub,
)
from hf_wav2vec2.processing_hf_wav2vec2 import HfWav2Vec2Processor
from hf_wav2vec2.tokenization_hf_wav2vec2 import HfWav2Vec2CTCTokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
run_push = push_command.run


def add_push_arguments(parser):
    push_command.add_arguments(parser)
    return parser


# the modeling file and every file it imports (transformers copies and loads exactly these for trust_remote_code)
CODE_FILES = {"modeling_hf_wav2vec2.py"} | {
    Path(path).name for path in get_relative_import_files(str(REPO_ROOT / "hf_wav2vec2" / "modeling_hf_wav2vec2.py"))
}
PROCESSOR_CODE_FILES = {"feature_extraction_hf_wav2vec2.py", "tokenization_hf_wav2vec2.py", "processing_hf_wav2vec2.py"}
PIPELINE_CODE_FILES = {"pipeline_hf_wav2vec2.py", "audio.py", "chunking.py"}  # CTC models only
CTC_FILES = {
    "README.md",
    "config.json",
    "model.safetensors",
    "vocab.json",
    "tokenizer_config.json",
    "processor_config.json",
    *CODE_FILES,
    *PROCESSOR_CODE_FILES,
    *PIPELINE_CODE_FILES,
}
PRETRAINING_FILES = {
    "README.md",
    "config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "feature_extraction_hf_wav2vec2.py",
    *CODE_FILES,
}
VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, "T": 6, "A": 7, "O": 8, "N": 9, "I": 10, "H": 11}
LIBRISPEECH_CLEAN = Result(
    dataset_type="librispeech_asr",
    dataset_name="LibriSpeech (clean)",
    config="clean",
    split="test",
    wer=3.4,
    cer=1.1,
    decoding="greedy CTC, no LM",
)


@pytest.fixture
def processor(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps(VOCAB))
    tokenizer = HfWav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"))
    return HfWav2Vec2Processor(feature_extractor=HfWav2Vec2FeatureExtractor(), tokenizer=tokenizer)


@pytest.fixture
def ctc_model():
    return HfWav2Vec2ForCTC(tiny_config(**NO_DROPOUT)).eval()


def files_in(folder):
    return {path.name for path in Path(folder).iterdir()}


def test_dry_run_folder_holds_exactly_the_intended_files(tmp_path, ctc_model, processor):
    folder = push_to_hub(
        ctc_model,
        "someone/tiny-ctc",
        processor=processor,
        dry_run_dir=tmp_path / "upload",
        card=CardInfo(results=[LIBRISPEECH_CLEAN]),
    )
    assert folder == tmp_path / "upload"
    assert files_in(folder) == CTC_FILES
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "hf_wav2vec2" and config["architectures"] == ["HfWav2Vec2ForCTC"]
    assert config["auto_map"] == {
        "AutoConfig": "configuration_hf_wav2vec2.HfWav2Vec2Config",
        "AutoModel": "modeling_hf_wav2vec2.HfWav2Vec2Model",
        "AutoModelForPreTraining": "modeling_hf_wav2vec2.HfWav2Vec2ForPreTraining",
        "AutoModelForCTC": "modeling_hf_wav2vec2.HfWav2Vec2ForCTC",
    }
    processor_config = json.loads((folder / "processor_config.json").read_text())
    assert processor_config["auto_map"]["AutoProcessor"] == "processing_hf_wav2vec2.HfWav2Vec2Processor"
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer_config["auto_map"]["AutoTokenizer"][0] == "tokenization_hf_wav2vec2.HfWav2Vec2CTCTokenizer"
    assert config["custom_pipelines"]["hf-wav2vec2-asr"]["impl"] == (
        "pipeline_hf_wav2vec2.HfWav2Vec2AutomaticSpeechRecognitionPipeline"
    )
    # the shipped code is the package's code
    for name in CODE_FILES | PROCESSOR_CODE_FILES | PIPELINE_CODE_FILES:
        assert (folder / name).read_text() == (REPO_ROOT / "hf_wav2vec2" / name).read_text()


def test_dry_run_from_directories(tmp_path, ctc_model, processor):
    ctc_dir = tmp_path / "ctc"
    ctc_model.save_pretrained(ctc_dir)
    processor.save_pretrained(ctc_dir)
    assert files_in(push_to_hub(ctc_dir, "someone/ctc", dry_run_dir=tmp_path / "a")) == CTC_FILES

    pretraining_dir = tmp_path / "pretraining"
    HfWav2Vec2ForPreTraining(tiny_config(variant="large")).save_pretrained(pretraining_dir)
    folder = push_to_hub(pretraining_dir, "someone/pre", dry_run_dir=tmp_path / "b")
    assert files_in(folder) == PRETRAINING_FILES
    # no feature extractor was saved: the one matching the config is published (layer norm -> attention mask)
    assert json.loads((folder / "preprocessor_config.json").read_text())["return_attention_mask"] is True


FRESH_PROCESS_SCRIPT = BLOCK_HF_WAV2VEC2 + textwrap.dedent(
    """
    try:
        import hf_wav2vec2
    except ImportError:
        pass
    else:
        raise SystemExit("hf_wav2vec2 is importable in the fresh process")

    import torch
    from transformers import AutoFeatureExtractor, AutoModel, AutoModelForCTC, AutoProcessor, pipeline

    ctc_dir, pretraining_dir, audio_file, out_file = sys.argv[1:]
    audio = torch.load(audio_file)
    model = AutoModelForCTC.from_pretrained(ctc_dir, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(ctc_dir, trust_remote_code=True)
    inputs = processor(audio=audio.numpy(), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    asr = pipeline("automatic-speech-recognition", model=ctc_dir, trust_remote_code=True)
    ours = pipeline(model=ctc_dir, trust_remote_code=True)  # the folder's own pipeline (custom_pipelines)
    encoder = AutoModel.from_pretrained(pretraining_dir, trust_remote_code=True).eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(pretraining_dir, trust_remote_code=True)
    with torch.no_grad():
        hidden = encoder(**feature_extractor(audio.numpy(), sampling_rate=16000, return_tensors="pt")).last_hidden_state
    torch.save({
        "logits": logits, "hidden": hidden, "text": asr(audio.numpy())["text"],
        "8 kHz": ours({"raw": audio.numpy()[::2], "sampling_rate": 8000})["text"],
        "modules": [
            type(obj).__module__
            for obj in (model, processor, processor.tokenizer, encoder, feature_extractor, ours)
        ],
        "hf_wav2vec2_loaded": any(name.split(".")[0] == "hf_wav2vec2" for name in sys.modules),
    }, out_file)
    """
)


def test_uploaded_folder_loads_in_a_fresh_process_without_the_package(tmp_path, ctc_model, processor):
    ctc_folder = push_to_hub(ctc_model, "someone/tiny-ctc", processor=processor, dry_run_dir=tmp_path / "ctc")
    pretraining = HfWav2Vec2ForPreTraining(tiny_config(variant="large", **NO_DROPOUT)).eval()
    pretraining_folder = push_to_hub(pretraining, "someone/tiny", dry_run_dir=tmp_path / "pre")
    audio = torch.randn(4000)
    torch.save(audio, tmp_path / "audio.pt")
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    (workdir / "check.py").write_text(FRESH_PROCESS_SCRIPT)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    completed = subprocess.run(
        [
            sys.executable,
            "check.py",
            str(ctc_folder),
            str(pretraining_folder),
            str(tmp_path / "audio.pt"),
            str(tmp_path / "out.pt"),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = torch.load(tmp_path / "out.pt")
    assert not result["hf_wav2vec2_loaded"]
    assert all(module.startswith("transformers_modules") for module in result["modules"]), result["modules"]
    assert result["modules"][-1].endswith("pipeline_hf_wav2vec2")

    inputs = processor(audio=audio.numpy(), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        logits = ctc_model(**inputs).logits
        hidden = pretraining.wav2vec2(
            torch.from_numpy(
                HfWav2Vec2FeatureExtractor(return_attention_mask=True)(audio.numpy(), sampling_rate=16000)[
                    "input_values"
                ][0]
            )[None]
        ).last_hidden_state
    assert torch.equal(result["logits"], logits)
    assert (result["hidden"] - hidden).abs().max() <= 1e-6
    assert result["text"] == processor.batch_decode(logits.argmax(-1))[0]
    # 8 kHz: resampled with soxr by the shipped pipeline (transformers' class would need torchaudio)
    here = pipeline("automatic-speech-recognition", model=str(ctc_folder))
    assert type(here) is HfWav2Vec2AutomaticSpeechRecognitionPipeline
    assert result["8 kHz"] == here({"raw": audio.numpy()[::2], "sampling_rate": 8000})["text"]


def test_model_card_metadata_parses(tmp_path, ctc_model, processor):
    card = CardInfo(
        language="en",
        datasets=["librispeech_asr"],
        results=[LIBRISPEECH_CLEAN],
        description="A test model.",
        training_data="LibriSpeech 960 h.",
        base_model="someone/tiny",
    )
    folder = push_to_hub(ctc_model, "someone/tiny-ctc", processor=processor, dry_run_dir=tmp_path / "u", card=card)
    readme = folder / "README.md"
    loaded = ModelCard.load(readme)
    assert loaded.data.library_name == "transformers" and loaded.data.language == "en"
    assert loaded.data.license == "apache-2.0" and loaded.data.datasets == ["librispeech_asr"]
    assert {"audio", "automatic-speech-recognition", "wav2vec2", "hf-wav2vec2"} <= set(loaded.data.tags)
    wer = [r for r in loaded.data.eval_results if r.metric_type == "wer"]
    assert len(wer) == 1 and wer[0].metric_value == 3.4
    assert (wer[0].task_type, wer[0].dataset_type, wer[0].dataset_split) == (
        "automatic-speech-recognition",
        "librispeech_asr",
        "test",
    )
    metadata = metadata_load(readme)
    metrics = metadata["model-index"][0]["results"][0]["metrics"]
    assert {"type": "wer", "value": 3.4, "name": "Test WER"} in metrics
    text = readme.read_text()
    assert 'pipeline(model="someone/tiny-ctc", trust_remote_code=True)' in text  # the shipped pipeline
    assert "arXiv:2006.11477" in text and "Baevski, Alexei and Zhou, Henry" in text
    assert "| LibriSpeech (clean) (`librispeech_asr`, config `clean`) | test | 3.4 | 1.1 | greedy CTC, no LM |" in text
    assert "{{" not in text and "A test model." in text and "LibriSpeech 960 h." in text
    assert "audio.py" not in check_upload_folder(
        push_to_hub(  # pre-training models get no pipeline code
            HfWav2Vec2ForPreTraining(tiny_config()), "someone/pre", dry_run_dir=tmp_path / "pre"
        )
    )


def test_card_without_results_has_no_model_index(tmp_path):
    folder = push_to_hub(HfWav2Vec2ForPreTraining(tiny_config()), "someone/pre", dry_run_dir=tmp_path / "u")
    metadata = metadata_load(folder / "README.md")
    assert "model-index" not in metadata and "automatic-speech-recognition" not in metadata["tags"]
    assert 'AutoModel.from_pretrained("someone/pre", trust_remote_code=True)' in (folder / "README.md").read_text()


def test_upload_calls_the_hub_with_the_prepared_folder(tmp_path, monkeypatch, ctc_model, processor):
    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, **kwargs):
            calls["create_repo"] = (repo_id, kwargs)
            return argparse.Namespace(repo_id=repo_id)

        def upload_folder(self, **kwargs):
            calls["upload_folder"] = kwargs
            calls["uploaded_files"] = files_in(kwargs["folder_path"])  # the folder is temporary
            return "commit-info"

    monkeypatch.setattr("hf_wav2vec2.hub.HfApi", FakeApi)
    result = push_to_hub(ctc_model, "someone/tiny-ctc", processor=processor, token="hf_x", private=True)
    assert result == "commit-info"
    assert calls["token"] == "hf_x"
    assert calls["create_repo"] == ("someone/tiny-ctc", {"private": True, "exist_ok": True, "repo_type": "model"})
    upload = calls["upload_folder"]
    assert upload["repo_id"] == "someone/tiny-ctc" and upload["repo_type"] == "model"
    assert calls["uploaded_files"] == CTC_FILES
    assert "*.bin" in upload["delete_patterns"]  # a stale pytorch_model.bin in the repository goes away
    assert not Path(upload["folder_path"]).exists()  # the temporary folder is cleaned up


def test_publishing_errors(tmp_path, ctc_model, processor):
    with pytest.raises(PublishError, match="needs its tokenizer"):
        push_to_hub(ctc_model, "someone/x", dry_run_dir=tmp_path / "a")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(PublishError, match="not empty"):
        push_to_hub(ctc_model, "someone/x", processor=processor, dry_run_dir=tmp_path / "busy")
    with pytest.raises(PublishError, match="invalid repository id"):
        push_to_hub(ctc_model, "a/b/c", processor=processor, dry_run_dir=tmp_path / "c")
    with pytest.raises(PublishError, match="WER, a CER or both"):
        Result(dataset_type="librispeech_asr")
    folder = push_to_hub(ctc_model, "someone/x", processor=processor, dry_run_dir=tmp_path / "d")
    (folder / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(PublishError, match="unexpected files.*pytorch_model.bin"):
        check_upload_folder(folder)
    (folder / "pytorch_model.bin").unlink()
    (folder / "tokenization_hf_wav2vec2.py").unlink()
    with pytest.raises(PublishError, match="lacks tokenization_hf_wav2vec2.py"):
        check_upload_folder(folder)
    (folder / "audio.py").unlink()  # imported by pipeline_hf_wav2vec2.py
    with pytest.raises(PublishError, match="lacks audio.py, tokenization_hf_wav2vec2.py"):
        check_upload_folder(folder)
    folder = push_to_hub(ctc_model, "someone/x", processor=processor, dry_run_dir=tmp_path / "e")
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    del tokenizer_config["auto_map"]
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    with pytest.raises(PublishError, match="tokenizer_config.json has no auto_map"):
        check_upload_folder(folder)


def test_template_placeholders_must_match():
    assert fill_template("a {{ x }} b {{y}}", {"x": "1", "y": "2"}) == "a 1 b 2"
    with pytest.raises(PublishError, match="missing values"):
        fill_template("{{ x }} {{ y }}", {"x": "1"})
    with pytest.raises(PublishError, match="unused values"):
        fill_template("{{ x }}", {"x": "1", "z": "2"})


def test_cli_push_dry_run(tmp_path, ctc_model, processor, capsys):
    model_dir = tmp_path / "model"
    ctc_model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    parser = add_push_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        [
            str(model_dir),
            "someone/tiny-ctc",
            "--dry_run",
            str(tmp_path / "upload"),
            "--wer",
            "4.2",
            "--cer",
            "1.5",
            "--dataset",
            "librispeech_asr",
            "--dataset_config",
            "other",
            "--language",
            "en",
        ]
    )
    assert run_push(args) == 0
    assert "nothing uploaded" in capsys.readouterr().out
    results = metadata_load(tmp_path / "upload" / "README.md")["model-index"][0]["results"]
    assert results[0]["dataset"]["config"] == "other"
    assert [m["value"] for m in results[0]["metrics"]] == [4.2, 1.5]


# --------------------------------------------------------------------------------------------------------------------
# The cards in model_cards/
# --------------------------------------------------------------------------------------------------------------------


def test_repository_template_is_the_packaged_one():
    assert (REPO_ROOT / "model_cards" / "template.md").read_text() == TEMPLATE_PATH.read_text()


@pytest.mark.parametrize("name", ["wav2vec2-base", "wav2vec2-base-ctc", "wav2vec2-large", "wav2vec2-large-ctc"])
def test_published_cards_are_valid(name):
    path = REPO_ROOT / "model_cards" / f"{name}.md"
    card = ModelCard.load(path)
    text = path.read_text()
    assert card.data.library_name == "transformers" and "hf-wav2vec2" in card.data.tags
    assert "{{" not in text and "arXiv:2006.11477" in text
    # converted checkpoints: the paper's numbers are quoted in the text, never as measured model-index results
    assert card.data.eval_results is None
    assert "hf-wav2vec2 convert" in text


# --------------------------------------------------------------------------------------------------------------------
# Card info saved beside a model
# --------------------------------------------------------------------------------------------------------------------


def test_card_info_save_load_round_trip(tmp_path):
    assert CardInfo.load(tmp_path) is None  # nothing saved
    info = CardInfo(
        language=["es", "ca"],
        datasets=["common_voice"],
        results=[LIBRISPEECH_CLEAN],
        base_model="someone/base",
        description="Spanish.",
        tags=["spanish"],
    )
    path = info.save(tmp_path)
    assert path == tmp_path / "card_info.json"
    saved = json.loads(path.read_text())
    assert saved["language"] == ["es", "ca"] and saved["results"][0]["wer"] == 3.4  # results as plain dicts
    loaded = CardInfo.load(tmp_path)
    assert loaded == info and isinstance(loaded.results[0], Result)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "card_info.json: not valid JSON"),
        ('{"language": "es", "colour": "red"}', "card_info.json: unknown card fields: colour"),
        ('{"results": [{"dataset_type": "x", "wer": 1, "speed": 2}]}', "card_info.json: invalid result"),
        ('{"results": [{"dataset_type": "x"}]}', "card_info.json: result on x: give a WER"),
        ("[1, 2]", "card_info.json: card must be a CardInfo or a dict"),
    ],
)
def test_card_info_load_errors_name_the_file(tmp_path, content, message):
    (tmp_path / "card_info.json").write_text(content)
    with pytest.raises(PublishError, match=message) as error:
        CardInfo.load(tmp_path)
    assert "\n" not in str(error.value) and str(tmp_path) in str(error.value)


def readme_push_command() -> list[str]:
    """The ``hf-wav2vec2 push`` line of the README's "Convert and publish" block, as argv (comment removed)."""
    text = (REPO_ROOT / "README.md").read_text()
    block = text[text.index("### Convert and publish\n") :].split("\n## ")[0]
    lines = [line for line in block.splitlines() if line.startswith("hf-wav2vec2 push ")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0], comments=True)[1:]


def test_readme_push_command_works(tmp_path, monkeypatch, ctc_model, processor, capsys):
    from hf_wav2vec2.cli import main

    argv = readme_push_command()
    assert argv == ["push", "out/", "me/wav2vec2-base-960h", "--dry_run", "upload/", "--wer", "3.4"]  # what we test
    monkeypatch.chdir(tmp_path)
    ctc_model.save_pretrained("out")  # what `hf-wav2vec2 convert ... out/` leaves: model + processor, no card info
    processor.save_pretrained("out")
    assert main(argv) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "nothing uploaded" in captured.out and "not into the Hub model-index" in captured.err
    readme = tmp_path / "upload" / "README.md"
    text = readme.read_text()
    # the result is in the table, named as unnamed; the Hub's model-index (which needs a dataset id) leaves it out
    assert "| unnamed evaluation data | test | 3.4 | – | – |" in text
    assert "model-index" not in metadata_load(readme)
    # no card info: the language is unknown, so the metadata leaves it out instead of guessing English
    assert "language" not in metadata_load(readme) and "Language: not specified." in text


def test_saved_card_info_gives_the_defaults_that_flags_override(tmp_path, ctc_model, processor):
    model_dir = tmp_path / "finetuned"
    ctc_model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    CardInfo(
        language="es",
        base_model="someone/wav2vec2-base",
        datasets=["common_voice"],
        description="Spanish CTC.",
        results=[Result(dataset_type="common_voice", config="es", split="test", wer=21.5, cer=6.1)],
    ).save(model_dir)
    parser = add_push_arguments(argparse.ArgumentParser())

    def pushed(*flags):
        folder = tmp_path / f"upload{len(list(tmp_path.iterdir()))}"
        assert run_push(parser.parse_args([str(model_dir), "me/es", "--dry_run", str(folder), *flags])) == 0
        assert "card_info.json" not in files_in(folder)  # used for the card, not uploaded
        return metadata_load(folder / "README.md"), (folder / "README.md").read_text()

    metadata, text = pushed()
    assert metadata["language"] == "es" and metadata["base_model"] == "someone/wav2vec2-base"
    assert metadata["model-index"][0]["results"][0]["dataset"]["type"] == "common_voice"
    assert "Spanish CTC." in text and "| 21.5 | 6.1 |" in text
    metadata, text = pushed("--language", "ca", "--wer", "9", "--dataset", "other_asr", "--base_model", "a/b")
    assert metadata["language"] == "ca" and metadata["base_model"] == "a/b"
    assert [r["dataset"]["type"] for r in metadata["model-index"][0]["results"]] == ["other_asr"]
    assert "Spanish CTC." in text  # fields no flag gives still come from card_info.json
    # the Python API merges the same way: explicit card fields over the saved ones
    folder = push_to_hub(model_dir, "me/es", dry_run_dir=tmp_path / "api", card={"license": "mit"})
    metadata = metadata_load(folder / "README.md")
    assert (metadata["license"], metadata["language"]) == ("mit", "es")
    assert "Language: `es`." in (folder / "README.md").read_text()
    # a model object has no directory, so no saved info: the default license, no language
    folder = push_to_hub(ctc_model, "me/x", processor=processor, dry_run_dir=tmp_path / "obj")
    metadata = metadata_load(folder / "README.md")
    assert metadata["license"] == "apache-2.0" and "language" not in metadata


def test_invalid_saved_card_info_is_a_one_line_error(tmp_path, ctc_model, processor):
    model_dir = tmp_path / "m"
    ctc_model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    (model_dir / "card_info.json").write_text('{"language": "es",')
    parser = add_push_arguments(argparse.ArgumentParser())
    with pytest.raises(CommandError) as exit_info:  # hf-wav2vec2's main prints it as one line and exits 1
        run_push(parser.parse_args([str(model_dir), "me/x", "--dry_run", str(tmp_path / "u")]))
    message = str(exit_info.value)
    assert "card_info.json: not valid JSON" in message and "\n" not in message
    assert not (tmp_path / "u").exists()  # refused before writing anything


def test_language_null_in_card_info_is_left_out_not_english(tmp_path, ctc_model, processor):
    model_dir = tmp_path / "finetuned"
    ctc_model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    CardInfo(language=None, description="Tones.").save(model_dir)  # what fine-tuning writes without --language
    assert json.loads((model_dir / "card_info.json").read_text())["language"] is None
    folder = push_to_hub(model_dir, "me/tones", dry_run_dir=tmp_path / "upload")
    readme = folder / "README.md"
    assert "language" not in metadata_load(readme)
    assert "Language: not specified." in readme.read_text()
    ModelCard.load(readme)  # still a valid Hub card
    card = card_metadata(CardInfo(language=["es", "ca"]), "HfWav2Vec2ForCTC", "x")
    assert card.language == ["es", "ca"]


def test_upload_folder_carries_the_text_normalization_of_fine_tuning(tmp_path, ctc_model, processor):
    from hf_wav2vec2.training.vocab import NORMALIZATION_FILE, TextNormalization
    from hf_wav2vec2.transcribe import saved_normalizer

    model_dir = tmp_path / "finetuned"
    ctc_model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    TextNormalization(case="upper", strip_punctuation=True).save_pretrained(model_dir)
    folder = push_to_hub(model_dir, "me/tones", dry_run_dir=tmp_path / "upload")
    assert NORMALIZATION_FILE in check_upload_folder(folder)
    assert (folder / NORMALIZATION_FILE).read_text() == (model_dir / NORMALIZATION_FILE).read_text()
    # the downloaded folder scores with the model's own normalization, as fine-tuning did
    assert saved_normalizer(str(folder))("Hello, world!") == saved_normalizer(str(model_dir))("Hello, world!")
    assert saved_normalizer(str(folder))("Hello, world!") != saved_normalizer(str(tmp_path))("Hello, world!")
    # a model without one uploads none
    (model_dir / NORMALIZATION_FILE).unlink()
    assert NORMALIZATION_FILE not in files_in(push_to_hub(model_dir, "me/t", dry_run_dir=tmp_path / "plain"))


def test_card_names_the_class_of_transformers_and_classification_architectures(ctc_model):
    from hf_wav2vec2 import HfWav2Vec2Config, HfWav2Vec2ForXVector

    config = HfWav2Vec2Config(**ctc_model.config.to_dict())
    config.architectures = ["Wav2Vec2ForCTC"]  # transformers' name
    assert describe_architecture(config).startswith("- `HfWav2Vec2ForCTC`: wav2vec 2.0 with a linear CTC head")
    xvector = HfWav2Vec2ForXVector(tiny_config(**NO_DROPOUT, num_labels=3))
    assert "an x-vector head (512-dimensional speaker embeddings)" in describe_architecture(xvector)
    config.architectures = ["HubertForCTC"]
    with pytest.raises(PublishError, match="architecture 'HubertForCTC' is not a model of this package"):
        describe_architecture(config)


def test_upload_folder_must_be_new_or_empty(tmp_path, ctc_model, processor):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(
        PublishError, match=r"used already exists and is not empty; the upload folder must start empty$"
    ):
        push_to_hub(ctc_model, "me/x", processor=processor, dry_run_dir=tmp_path / "used")
    assert (tmp_path / "used" / "notes.txt").read_text() == "mine"  # nothing of the user's is touched
    (tmp_path / "empty").mkdir()
    assert push_to_hub(ctc_model, "me/x", processor=processor, dry_run_dir=tmp_path / "empty") == tmp_path / "empty"
