"""Publishing models on the Hugging Face Hub.

:func:`push_to_hub` prepares an upload folder and uploads it with ``huggingface_hub`` (``HfApi.create_repo`` +
``HfApi.upload_folder``); with ``dry_run_dir`` it only writes the folder that would be uploaded. The folder holds
exactly:

* ``model.safetensors`` (sharded safetensors for big models) and never a pickled ``pytorch_model.bin``;
* ``config.json`` with an ``auto_map`` naming this package's classes for ``AutoConfig``, ``AutoModel``,
  ``AutoModelForPreTraining`` and ``AutoModelForCTC``, and the code files ``trust_remote_code=True`` imports
  (``save_pretrained`` copies them because the classes are registered for the Auto classes);
* the processor files (``vocab.json``, ``tokenizer_config.json``, ``processor_config.json`` or, for a feature
  extractor alone, ``preprocessor_config.json``) with their code files, so ``AutoProcessor`` works without this
  package; for CTC models also this package's pipeline (``pipeline_hf_wav2vec2.py``, ``audio.py``, ``chunking.py``,
  a ``custom_pipelines`` entry), which ``pipeline(model=REPO, trust_remote_code=True)`` builds: soxr resampling
  instead of torchaudio, file streaming; for audio classifiers likewise ``pipeline_audio_classification.py``;
* ``text_normalization.json`` when fine-tuning wrote one beside the model, so ``hf-wav2vec2 evaluate`` of the
  downloaded model scores with the normalization it was trained with;
* ``README.md``: a model card (:mod:`hf_wav2vec2.model_card`) with Hub ``model-index`` metadata for the reported
  WER / CER, or accuracy for classifiers. Its defaults come from the model directory's ``card_info.json``
  (:meth:`CardInfo.save`, written by fine-tuning); explicit card fields override them.
"""

import importlib
import json
import re
import shutil
import tempfile
import warnings
from fnmatch import fnmatch
from pathlib import Path

import torch
from huggingface_hub import HfApi

from .architectures import ARCHITECTURES
from .model_card import (  # re-exported: the card is part of this module's interface
    CARD_INFO_FILE,
    DEFAULT_LICENSE,
    TEMPLATE_PATH,
    CardInfo,
    PublishError,
    Result,
    card_metadata,
    describe_architecture,
    fill_template,
    render_model_card,
)
from .training.vocab import NORMALIZATION_FILE  # uploaded: a downloaded model is scored with its own normalization

# Every file an upload folder may hold; anything else (a .bin, a checkpoint, a cache directory) is an error.
ALLOWED_FILES = (
    "README.md",
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*-of-*.safetensors",
    "*.py",
    "vocab.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "processor_config.json",
    "preprocessor_config.json",
    NORMALIZATION_FILE,
    "adapter.*.safetensors",
)
REQUIRED_FILES = ("README.md", "config.json")

# Remote files an upload replaces or removes: weights and code of an earlier upload (a stale pytorch_model.bin
# next to new safetensors would be loaded by older clients). Other files in the repository are left alone.
# MMS adapter files are replaced one by one (an upload of one language must not delete the others).
STALE_REMOTE_FILES = ["*.bin", "*.pt", "*.pth", "*.ckpt", "model*.safetensors", "*.safetensors.index.json", "*.py"]

# The model classes defined in modeling_hf_wav2vec2.py; any of them loads any checkpoint of this package.
MODEL_AUTO_MAP = {a.auto_class: a.auto_map_entry for a in ARCHITECTURES if a.module == "modeling_hf_wav2vec2"}


# --------------------------------------------------------------------------------------------------------------------
# Upload folder
# --------------------------------------------------------------------------------------------------------------------


def _resolve(model_dir_or_model, processor):
    """(model, processor or feature extractor) to publish, with the pairing checked."""
    from .feature_extraction_hf_wav2vec2 import HfWav2Vec2FeatureExtractor
    from .modeling_hf_wav2vec2 import HfWav2Vec2ForCTC, HfWav2Vec2PreTrainedModel
    from .processing_hf_wav2vec2 import HfWav2Vec2Processor

    if isinstance(model_dir_or_model, (str, Path)):
        from .convert import ConversionError, load_model_directory

        directory = Path(model_dir_or_model)
        if not (directory / "config.json").is_file():
            raise PublishError(f"{directory}: not a model directory (no config.json)")
        try:
            model, saved_processor = load_model_directory(directory)
        except ConversionError as error:
            raise PublishError(str(error)) from None
        processor = processor if processor is not None else saved_processor
    elif isinstance(model_dir_or_model, HfWav2Vec2PreTrainedModel):
        model = model_dir_or_model
    else:
        raise PublishError(
            f"expected a model directory or an hf_wav2vec2 model, got {type(model_dir_or_model).__name__} "
            "(convert transformers models first: hf-wav2vec2 convert)"
        )
    if processor is not None and not isinstance(processor, (HfWav2Vec2Processor, HfWav2Vec2FeatureExtractor)):
        raise PublishError(
            f"processor must be an HfWav2Vec2Processor or HfWav2Vec2FeatureExtractor, got {type(processor).__name__}"
        )
    if isinstance(model, HfWav2Vec2ForCTC):
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is None:
            raise PublishError(
                "a CTC model needs its tokenizer: pass processor= (HfWav2Vec2Processor) or save it with the model"
            )
        if len(tokenizer.get_vocab()) > model.config.vocab_size:
            raise PublishError(
                f"the tokenizer has {len(tokenizer.get_vocab())} tokens, the CTC head only {model.config.vocab_size}"
            )
        if tokenizer.pad_token_id != model.config.pad_token_id:
            raise PublishError(
                f"the tokenizer's pad (CTC blank) id {tokenizer.pad_token_id} differs from the model's pad_token_id "
                f"{model.config.pad_token_id}"
            )
    elif processor is None:
        processor = HfWav2Vec2FeatureExtractor.for_config(model.config)
    return model, processor


def _complete_auto_map(config_file: Path):
    # save_pretrained maps only the saved class; listing all three lets AutoModel load the encoder of a
    # pre-training checkpoint and AutoModelForCTC start a fine-tuning from it, all through remote code.
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.setdefault("auto_map", {}).update(MODEL_AUTO_MAP)
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _code_modules(folder: Path) -> set[str]:
    """Module files named by the auto_map and custom_pipelines entries of the configs in ``folder``, and the
    files its code imports (``from .audio import ...``)."""
    from transformers.dynamic_module_utils import get_relative_imports

    modules = set()

    def collect(auto_map):
        for reference in auto_map.values():
            for item in reference if isinstance(reference, list) else [reference]:
                if item:
                    modules.add(item.split("--")[-1].rsplit(".", 1)[0] + ".py")

    for name in ("config.json", "processor_config.json", "tokenizer_config.json", "preprocessor_config.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            collect(data.get("auto_map", {}))
            collect(data.get("feature_extractor", {}).get("auto_map", {}))  # nested in processor_config.json
            collect({task: entry.get("impl") for task, entry in data.get("custom_pipelines", {}).items()})
    return modules | {f"{name}.py" for path in folder.glob("*.py") for name in get_relative_imports(path)}


def check_upload_folder(folder) -> list[str]:
    """Check that ``folder`` holds exactly what an upload should; returns its sorted file names."""
    folder = Path(folder)
    entries = sorted(folder.iterdir())
    stray = [p.name for p in entries if p.is_dir() or not any(fnmatch(p.name, pattern) for pattern in ALLOWED_FILES)]
    if stray:
        raise PublishError(f"unexpected files in the upload folder {folder}: {', '.join(stray)}")
    names = [p.name for p in entries]
    missing = [name for name in REQUIRED_FILES if name not in names]
    if not any(fnmatch(name, "*.safetensors") for name in names):
        missing.append("model.safetensors")
    missing += sorted(module for module in _code_modules(folder) if module not in names)
    if missing:
        raise PublishError(f"the upload folder {folder} lacks {', '.join(missing)}")
    # every config must name its code, or transformers cannot load it without this package
    for name in ("config.json", "processor_config.json", "tokenizer_config.json", "preprocessor_config.json"):
        if name in names and "auto_map" not in json.loads((folder / name).read_text(encoding="utf-8")):
            raise PublishError(f"{name} has no auto_map: its classes are not registered for the Auto classes")
    return names


def _empty_directory(path) -> Path:
    from .convert import ConversionError, new_directory

    try:
        return new_directory(path)
    except ConversionError:
        raise PublishError(f"{path} already exists and is not empty; the upload folder must start empty") from None


def prepare_upload_folder(model_dir_or_model, folder, *, repo_id: str, processor=None, card=None) -> Path:
    """Write the files to upload for ``repo_id`` into the new (or empty) directory ``folder``.

    ``card`` fields override those of the model directory's ``card_info.json`` (see :meth:`CardInfo.save`)."""
    from .interop import copy_adapter_files
    from .modeling_hf_wav2vec2 import HfWav2Vec2ForCTC
    from .modeling_hf_wav2vec2_classification import HfWav2Vec2ForSequenceClassification
    from .pipeline_audio_classification import save_classification_pipeline_code
    from .pipeline_hf_wav2vec2 import save_pipeline_code

    model, processor = _resolve(model_dir_or_model, processor)
    if isinstance(model_dir_or_model, (str, Path)):
        card = (CardInfo.load(model_dir_or_model) or CardInfo()).updated(card)
    readme = render_model_card(model, repo_id, card)
    folder = _empty_directory(folder)
    model.save_pretrained(folder)  # safetensors; copies configuration_/modeling_hf_wav2vec2.py
    processor.save_pretrained(folder)
    copy_adapter_files(model, folder)  # MMS: every language's adapter file
    _complete_auto_map(folder / "config.json")
    if isinstance(model, HfWav2Vec2ForCTC):  # remote-code users get this package's pipeline (no torchaudio)
        save_pipeline_code(folder)
    elif isinstance(model, HfWav2Vec2ForSequenceClassification):  # likewise for audio classification
        save_classification_pipeline_code(folder)
    if isinstance(model_dir_or_model, (str, Path)) and (Path(model_dir_or_model) / NORMALIZATION_FILE).is_file():
        # `hf-wav2vec2 evaluate` of the downloaded model then scores with the normalization it was trained with
        shutil.copyfile(Path(model_dir_or_model) / NORMALIZATION_FILE, folder / NORMALIZATION_FILE)
    (folder / "README.md").write_text(readme, encoding="utf-8")
    check_upload_folder(folder)
    return folder


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else repr(error)


def _check_repo_id(repo_id: str):
    if not re.fullmatch(r"([\w.-]+/)?[\w.-]+", repo_id or "") or "--" in repo_id or ".." in repo_id:
        raise PublishError(f"invalid repository id {repo_id!r}; expected 'name' or 'owner/name'")


def push_to_hub(
    model_dir_or_model,
    repo_id: str,
    *,
    processor=None,
    card=None,
    dry_run_dir=None,
    token=None,
    private: bool = False,
    commit_message: str | None = None,
):
    """Publish a model (and its processor and card) to the Hub repository ``repo_id``.

    Args:
        model_dir_or_model: a directory saved by this package (or transformers), or an hf_wav2vec2 model.
        repo_id: "owner/name" (or "name" for the token's user).
        processor: HfWav2Vec2Processor (required for CTC models unless saved in the directory) or feature extractor.
        card: :class:`CardInfo` or a dict of its fields (language, license, datasets, results with WER / CER, ...).
        dry_run_dir: write the upload folder here and return its path; nothing is uploaded.
        token: Hub token (default: the logged-in one).
        private: create the repository as private (an existing repository keeps its visibility).
        commit_message: message of the upload commit.

    Returns:
        the folder path in dry-run mode, else the ``CommitInfo`` of the upload. The repository is created if
        needed; remote weights and code files absent from the folder (e.g. an old ``pytorch_model.bin``) are deleted
        in the same commit, other remote files are kept.
    """
    _check_repo_id(repo_id)
    if dry_run_dir is not None:
        return prepare_upload_folder(model_dir_or_model, dry_run_dir, repo_id=repo_id, processor=processor, card=card)
    from huggingface_hub.errors import HfHubHTTPError

    with tempfile.TemporaryDirectory(prefix="hf-wav2vec2-upload-") as scratch:
        folder = prepare_upload_folder(
            model_dir_or_model, Path(scratch) / "upload", repo_id=repo_id, processor=processor, card=card
        )
        api = HfApi(token=token)
        try:
            repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            return api.upload_folder(
                repo_id=getattr(repo_url, "repo_id", None) or repo_id,
                folder_path=str(folder),
                repo_type="model",
                commit_message=commit_message or "Upload wav2vec 2.0 model with hf-wav2vec2",
                delete_patterns=STALE_REMOTE_FILES,
            )
        except (HfHubHTTPError, OSError) as error:
            raise PublishError(f"upload to {repo_id} failed: {_first_line(error)}") from error


# --------------------------------------------------------------------------------------------------------------------
# One MMS language
# --------------------------------------------------------------------------------------------------------------------


def _local_adapter(model_dir: Path, lang: str) -> tuple[Path, dict, dict | None, dict | None]:
    """(adapter file, its tensors, the language's vocabulary in the local vocab.json or None, that whole
    vocab.json when it is the merged {language: vocabulary} file adapter-only fine-tuning writes, else None)."""
    from .adapters_hf_wav2vec2 import ADAPTER_SAFE_FILE, read_adapter_file

    path = model_dir / ADAPTER_SAFE_FILE.format(lang)
    if not path.is_file():
        raise PublishError(f"{path}: no such adapter file (only safetensors adapter files are published)")
    try:
        state = read_adapter_file(path)
    except Exception as error:  # safetensors' errors for a damaged file are not ValueErrors
        raise PublishError(f"{path}: not a safetensors file ({_first_line(error)})") from None
    vocab_path = model_dir / "vocab.json"
    vocab = json.loads(vocab_path.read_text(encoding="utf-8")) if vocab_path.is_file() else None
    nested = isinstance(vocab, dict) and vocab and all(isinstance(v, dict) for v in vocab.values())
    return path, state, vocab[lang] if nested and lang in vocab else None, vocab if nested else None


def _check_adapter_fits(state: dict, config_dict: dict, repo_id: str, name: str) -> None:
    """The adapter file holds exactly the adapter keys of the repository's model, with its shapes (the head may have
    any number of rows: the language's vocabulary size)."""
    from .configuration_hf_wav2vec2 import HfWav2Vec2Config
    from .modeling_hf_wav2vec2 import HfWav2Vec2ForCTC

    try:
        config = HfWav2Vec2Config.from_dict(config_dict)
        if getattr(config, "adapter_attn_dim", None) is None:
            raise PublishError(f"{repo_id}: its model has no adapters (config.json sets no adapter_attn_dim)")
        with torch.device("meta"):  # shapes only
            expected = {key: tuple(p.shape) for key, p in HfWav2Vec2ForCTC(config)._get_adapters().items()}
    except (ValueError, TypeError) as error:
        raise PublishError(f"{repo_id}: config.json does not describe a model of this package ({error})") from None
    missing, extra = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or extra:
        raise PublishError(f"{name} does not fit {repo_id}: missing keys {missing[:4]}, unexpected keys {extra[:4]}")
    for key, shape in expected.items():
        got = tuple(state[key].shape)
        if got != shape and not (key.startswith("lm_head.") and got[1:] == shape[1:]):
            raise PublishError(f"{name} does not fit {repo_id}: {key} has shape {got}, the model {shape}")


class RemoteNotCheckedWarning(UserWarning):
    """A dry run of :func:`push_adapter` that could not reach the Hub: the repository's config.json and vocab.json
    were not read; the model folder's own stood in for them."""


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    """The errors of a Hub that cannot be reached (no network, a timeout, ``HF_HUB_OFFLINE=1``), whichever HTTP
    client this huggingface_hub uses (httpx2, httpx or requests; their transport errors are no OSErrors)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]  # OfflineModeIsEnabled is a ConnectionError
    for module, names in (
        ("httpx2", ("TransportError",)),
        ("httpx", ("TransportError",)),
        ("requests", ("ConnectionError", "Timeout")),
    ):
        try:
            client = importlib.import_module(module)
        except ImportError:
            continue
        errors += [getattr(client, name) for name in names if hasattr(client, name)]
    return tuple(errors)


def _remote_json(api, repo_id: str, filename: str) -> dict | None:
    if not api.file_exists(repo_id, filename):
        return None
    path = api.hf_hub_download(repo_id=repo_id, filename=filename)
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _merged_vocab(remote: dict | None, lang: str, vocab: dict | None, repo_id: str, model_dir: Path) -> dict | None:
    """The repository's multilingual vocab.json with ``lang``'s vocabulary put in, or None when it has it already."""
    if remote is None or not remote or not all(isinstance(v, dict) for v in remote.values()):
        raise PublishError(
            f"{repo_id}: its vocab.json is missing or holds one vocabulary, not one per language "
            "(push the whole model with hf-wav2vec2 push)"
        )
    if vocab is None:
        if lang in remote:
            return None  # the adapter of a language the repository knows, with its vocabulary unchanged
        raise PublishError(
            f"no vocabulary for {lang!r}: neither {model_dir / 'vocab.json'} nor {repo_id}'s vocab.json has one"
        )
    return None if remote.get(lang) == vocab else {**remote, lang: vocab}


def _remote_model(api, repo_id: str) -> tuple[dict, dict | None]:
    """The repository's config.json and vocab.json (None when it has none); a PublishError when it is no model
    repository."""
    if not api.repo_exists(repo_id):
        raise PublishError(f"{repo_id}: no such repository (publish the base model first: hf-wav2vec2 push)")
    config = _remote_json(api, repo_id, "config.json")
    if config is None:
        raise PublishError(f"{repo_id}: no config.json (not a model repository)")
    return config, _remote_json(api, repo_id, "vocab.json")


def _local_stand_in(
    model_dir: Path, repo_id: str, lang: str, vocab: dict | None, local_vocab: dict | None, error: Exception
) -> tuple:
    """An offline dry run: ``model_dir``'s config.json (and its vocab.json ``local_vocab``, as the merged one
    adapter-only fine-tuning writes) in place of the repository's, with a :class:`RemoteNotCheckedWarning` saying
    so. Returns (config, the vocab.json to write)."""
    config_path = model_dir / "config.json"
    unreachable = f"the Hub cannot be reached ({_first_line(error)})"
    if not config_path.is_file():
        raise PublishError(f"{unreachable} and {config_path} does not exist: nothing to check the adapter against")
    if vocab is None:
        raise PublishError(f"{unreachable} and {model_dir / 'vocab.json'} has no vocabulary for {lang!r}")
    warnings.warn(
        f"{unreachable}: dry run checked against {config_path}; {repo_id}'s config.json was not checked "
        f"and vocab.json is {model_dir}'s",
        RemoteNotCheckedWarning,
        stacklevel=3,
    )
    return json.loads(config_path.read_text(encoding="utf-8")), local_vocab


def push_adapter(
    model_dir, repo_id: str, lang: str, *, dry_run_dir=None, token=None, commit_message: str | None = None
):
    """Upload one MMS language to an existing Hub repository: ``adapter.<lang>.safetensors`` from ``model_dir``
    (as adapter-only fine-tuning writes it) and, when the language's vocabulary is new or changed, the repository's
    ``vocab.json`` with that vocabulary added; every other remote file (the base weights, the other languages) is
    kept. The file is checked against the repository's config.json (adapter keys and shapes) and the head's rows
    against the vocabulary's size before anything is uploaded.

    With ``dry_run_dir`` the files are written there (a new or empty directory) and nothing is uploaded; the
    repository is still read, and when the Hub cannot be reached the file is checked against ``model_dir``'s own
    config.json instead (with a :class:`RemoteNotCheckedWarning`). Returns that folder, or the ``CommitInfo`` of
    the upload."""
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    from .adapters_hf_wav2vec2 import check_language

    _check_repo_id(repo_id)
    try:
        check_language(lang, "--adapter_lang")
    except ValueError as error:
        raise PublishError(str(error)) from None
    model_dir = Path(model_dir)
    path, state, vocab, local_vocab = _local_adapter(model_dir, lang)
    api = HfApi(token=token)
    unreachable = _unreachable_errors()
    try:
        try:
            config, remote_vocab = _remote_model(api, repo_id)
        except unreachable as error:
            if dry_run_dir is None:
                raise
            config, merged = _local_stand_in(model_dir, repo_id, lang, vocab, local_vocab, error)
            _check_adapter_fits(state, config, str(model_dir), path.name)
        else:
            _check_adapter_fits(state, config, repo_id, path.name)
            merged = _merged_vocab(remote_vocab, lang, vocab, repo_id, model_dir)
        rows, tokens = state["lm_head.weight"].shape[0], len(merged[lang] if merged else vocab or {})
        if tokens > rows:
            raise PublishError(f"{path.name}: the head has {rows} outputs, the {lang!r} vocabulary {tokens} tokens")
        with tempfile.TemporaryDirectory(prefix="hf-wav2vec2-adapter-") as scratch:
            folder = _empty_directory(dry_run_dir) if dry_run_dir is not None else Path(scratch)
            shutil.copyfile(path, folder / path.name)
            if merged is not None:
                (folder / "vocab.json").write_text(
                    json.dumps(merged, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
                )
            if dry_run_dir is not None:
                return folder
            operations = [
                CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p)) for p in sorted(folder.iterdir())
            ]
            return api.create_commit(
                repo_id=repo_id,
                operations=operations,
                repo_type="model",
                commit_message=commit_message or f"Add the {lang} adapter with hf-wav2vec2",
            )
    except (HfHubHTTPError, OSError, *unreachable) as error:
        raise PublishError(f"upload to {repo_id} failed: {_first_line(error)}") from error


__all__ = [
    "CARD_INFO_FILE",
    "DEFAULT_LICENSE",
    "CardInfo",
    "PublishError",
    "RemoteNotCheckedWarning",
    "Result",
    "TEMPLATE_PATH",
    "card_metadata",
    "check_upload_folder",
    "describe_architecture",
    "fill_template",
    "prepare_upload_folder",
    "push_adapter",
    "push_to_hub",
    "render_model_card",
]
