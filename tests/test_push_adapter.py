"""Publishing one MMS language (offline, HfApi faked by a local "repository" folder): push_adapter uploads
``adapter.<lang>.safetensors`` and the repository's vocab.json with the language added, in one commit, after
checking the file against the repository's model; ``hf-wav2vec2 push --adapter_lang``."""

import argparse
import json
import shutil

import pytest
import torch
from conftest import NO_DROPOUT, tiny_config
from torch import nn

from hf_wav2vec2.cli import push as push_command
from hf_wav2vec2.cli.common import CommandError
from hf_wav2vec2.hub import PublishError, RemoteNotCheckedWarning, push_adapter
from hf_wav2vec2.modeling_hf_wav2vec2 import HfWav2Vec2ForCTC

ENG = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: 5 + i for i, c in enumerate("etaoinh")}}
SPA = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: 5 + i for i, c in enumerate("eaos")}}  # 9 tokens
REPO = "me/mms-tiny"


def mms_config(**overrides):
    return tiny_config("large", **NO_DROPOUT, **{"adapter_attn_dim": 4, "vocab_size": len(ENG), **overrides})


@pytest.fixture
def remote(tmp_path):
    """The Hub repository as a folder: the base model with its eng adapter and a nested vocab."""
    model = HfWav2Vec2ForCTC(mms_config()).eval()
    folder = tmp_path / "remote"
    model.save_pretrained(folder)
    model.save_adapter(folder, "eng")
    (folder / "vocab.json").write_text(json.dumps({"eng": ENG}))
    return folder


@pytest.fixture
def spa_model(remote):
    """The base with a new spa adapter and a 9-row head, as adapter-only fine-tuning leaves it."""
    model = HfWav2Vec2ForCTC.from_pretrained(remote).eval()
    torch.manual_seed(1)
    model.init_adapter_layers()
    model.lm_head = nn.Linear(model.config.hidden_size, len(SPA))
    return model


@pytest.fixture
def spa_dir(spa_model, tmp_path):
    """What adapter-only fine-tuning writes: adapter.spa.safetensors and the merged vocab."""
    directory = tmp_path / "spa-run"
    spa_model.save_adapter(directory, "spa")
    (directory / "vocab.json").write_text(json.dumps({"eng": ENG, "spa": SPA}))
    return directory


@pytest.fixture
def fake_api(monkeypatch, remote):
    commits = []

    class FakeApi:
        def __init__(self, token=None):
            self.token = token

        def repo_exists(self, repo_id):
            return repo_id == REPO

        def file_exists(self, repo_id, filename):
            return (remote / filename).is_file()

        def hf_hub_download(self, repo_id, filename):
            return str(remote / filename)

        def create_commit(self, repo_id, operations, repo_type, commit_message):
            commits.append((repo_id, sorted(op.path_in_repo for op in operations), commit_message))
            for op in operations:  # the "Hub" applies the commit
                shutil.copyfile(op.path_or_fileobj, remote / op.path_in_repo)
            return "https://huggingface.co/commit/1"

    monkeypatch.setattr("hf_wav2vec2.hub.HfApi", FakeApi)
    return commits


def logits(model, wav):
    with torch.no_grad():
        return model(wav).logits


def test_push_adapter_adds_one_language_and_keeps_the_others(remote, spa_model, spa_dir, fake_api):
    eng_before = (remote / "adapter.eng.safetensors").read_bytes()
    assert push_adapter(spa_dir, REPO, "spa") == "https://huggingface.co/commit/1"
    assert fake_api == [(REPO, ["adapter.spa.safetensors", "vocab.json"], "Add the spa adapter with hf-wav2vec2")]
    assert json.loads((remote / "vocab.json").read_text()) == {"eng": ENG, "spa": SPA}
    assert (remote / "adapter.eng.safetensors").read_bytes() == eng_before
    wav = torch.randn(1, 1600)
    published = HfWav2Vec2ForCTC.from_pretrained(remote, target_lang="spa").eval()  # as a downloader loads it
    assert published.config.vocab_size == len(SPA)
    torch.testing.assert_close(logits(published, wav), logits(spa_model, wav), atol=0, rtol=0)


def test_dry_run_writes_the_files_and_uploads_nothing(spa_dir, fake_api, tmp_path):
    folder = push_adapter(spa_dir, REPO, "spa", dry_run_dir=tmp_path / "dry")
    assert sorted(p.name for p in folder.iterdir()) == ["adapter.spa.safetensors", "vocab.json"]
    assert json.loads((folder / "vocab.json").read_text()) == {"eng": ENG, "spa": SPA} and fake_api == []


def test_a_known_vocabulary_is_not_uploaded_again(remote, spa_dir, fake_api):
    (remote / "vocab.json").write_text(json.dumps({"eng": ENG, "spa": SPA}))
    (spa_dir / "vocab.json").unlink()  # the repository's vocabulary for spa is used
    push_adapter(spa_dir, REPO, "spa")
    assert fake_api[0][1] == ["adapter.spa.safetensors"]


def test_adapter_that_does_not_fit_is_refused_before_uploading(remote, spa_dir, fake_api, tmp_path):
    other = HfWav2Vec2ForCTC(mms_config(adapter_attn_dim=8))
    other.save_adapter(tmp_path / "wide", "fra")
    (tmp_path / "wide" / "vocab.json").write_text(json.dumps({"fra": ENG}))
    with pytest.raises(
        PublishError,
        match=r"adapter.fra.safetensors does not fit me/mms-tiny: .*linear_1.weight has "
        r"shape \(8, 32\), the model \(4, 32\)",
    ):
        push_adapter(tmp_path / "wide", REPO, "fra")
    (spa_dir / "vocab.json").write_text(json.dumps({"spa": {**SPA, "x": 9, "y": 10}}))
    with pytest.raises(PublishError, match="the head has 9 outputs, the 'spa' vocabulary 11 tokens"):
        push_adapter(spa_dir, REPO, "spa")
    assert fake_api == []


@pytest.mark.parametrize(
    "change, message",
    [
        ("no repo", "me/other: no such repository"),
        ("no file", r"adapter.deu.safetensors: no such adapter file"),
        ("flat vocab", "its vocab.json is missing or holds one vocabulary"),
        ("no vocab", "no vocabulary for 'spa'"),
        ("no adapters", "its model has no adapters"),
        ("bad lang", "is no language id"),
    ],
)
def test_errors_are_one_line_and_upload_nothing(remote, spa_dir, fake_api, change, message):
    repo = "me/other" if change == "no repo" else REPO
    lang = {"no file": "deu", "bad lang": "../x"}.get(change, "spa")
    if change == "flat vocab":
        (remote / "vocab.json").write_text(json.dumps(ENG))
    if change == "no vocab":
        (spa_dir / "vocab.json").write_text(json.dumps({"eng": ENG}))
    if change == "no adapters":
        config = json.loads((remote / "config.json").read_text())
        (remote / "config.json").write_text(json.dumps({**config, "adapter_attn_dim": None}))
    with pytest.raises(PublishError, match=message) as error:
        push_adapter(spa_dir, repo, lang)
    assert "\n" not in str(error.value) and fake_api == []


def cli_args(*argv):
    parser = argparse.ArgumentParser()
    push_command.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def test_cli_push_adapter_lang(spa_dir, fake_api, tmp_path, capsys):
    assert push_command.run(cli_args(spa_dir, REPO, "--adapter_lang", "spa", "--dry_run", tmp_path / "dry")) == 0
    assert "wrote the spa files for me/mms-tiny" in capsys.readouterr().out and fake_api == []
    assert push_command.run(cli_args(spa_dir, REPO, "--adapter_lang", "spa")) == 0
    assert fake_api[0][1] == ["adapter.spa.safetensors", "vocab.json"]
    with pytest.raises(CommandError, match="takes no --wer, --language") as error:
        push_command.run(cli_args(spa_dir, REPO, "--adapter_lang", "spa", "--wer", "3", "--language", "es"))
    assert error.value.status == 2


@pytest.fixture
def offline_api(monkeypatch):
    """A Hub that cannot be reached, as with HF_HUB_OFFLINE=1 (OfflineModeIsEnabled) or no network."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    class OfflineApi:
        def __init__(self, token=None):
            pass

        def __getattr__(self, name):
            def unreachable(*args, **kwargs):
                raise OfflineModeIsEnabled("Cannot reach https://huggingface.co/api/models/me/mms-tiny: offline")

            return unreachable

    monkeypatch.setattr("hf_wav2vec2.hub.HfApi", OfflineApi)


def test_offline_dry_run_checks_the_local_config_and_says_so(spa_model, spa_dir, offline_api, tmp_path, capsys):
    spa_model.config.save_pretrained(spa_dir)  # as adapter-only fine-tuning saves it beside the adapter
    with pytest.warns(RemoteNotCheckedWarning, match="config.json was not checked"):
        folder = push_adapter(spa_dir, REPO, "spa", dry_run_dir=tmp_path / "dry")
    assert sorted(p.name for p in folder.iterdir()) == ["adapter.spa.safetensors", "vocab.json"]
    assert json.loads((folder / "vocab.json").read_text()) == {"eng": ENG, "spa": SPA}
    # the command line: the same in one warning line, then the usual result line
    assert push_command.run(cli_args(spa_dir, REPO, "--adapter_lang", "spa", "--dry_run", tmp_path / "dry2")) == 0
    out, err = capsys.readouterr()
    assert "wrote the spa files for me/mms-tiny" in out
    (warning,) = err.splitlines()
    assert warning.startswith("hf-wav2vec2: warning: the Hub cannot be reached") and "not checked" in warning
    # the local config is checked: an adapter of another width is refused offline too
    other = HfWav2Vec2ForCTC(mms_config(adapter_attn_dim=8))
    other.config.save_pretrained(tmp_path / "wide")
    HfWav2Vec2ForCTC(mms_config()).save_adapter(tmp_path / "wide", "fra")
    (tmp_path / "wide" / "vocab.json").write_text(json.dumps({"fra": ENG}))
    wide = pytest.raises(PublishError, match=r"does not fit .*wide: .*linear_1.weight has shape \(4, 32\)")
    with pytest.warns(RemoteNotCheckedWarning), wide:
        push_adapter(tmp_path / "wide", REPO, "fra", dry_run_dir=tmp_path / "dry3")


def test_offline_upload_and_offline_dry_run_without_config_are_one_line_errors(spa_dir, offline_api, tmp_path):
    with pytest.raises(PublishError, match="upload to me/mms-tiny failed: Cannot reach"):
        push_adapter(spa_dir, REPO, "spa")
    with pytest.raises(PublishError, match="config.json does not exist: nothing to check the adapter against"):
        push_adapter(spa_dir, REPO, "spa", dry_run_dir=tmp_path / "dry")
