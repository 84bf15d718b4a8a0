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
  instead of torchaudio, file streaming;
* ``text_normalization.json`` when fine-tuning wrote one beside the model, so ``hf-wav2vec2 evaluate`` of the
  downloaded model scores with the normalization it was trained with;
* ``README.md``: a model card rendered from the packaged template ``hf_wav2vec2/templates/model_card.md`` (the
  single source of truth; ``model_cards/template.md`` is a verbatim copy for readers of the repository), with Hub
  ``model-index`` metadata for the reported WER / CER. Its defaults come from the model directory's
  ``card_info.json`` (:meth:`CardInfo.save`, written by fine-tuning); explicit card fields override them.
"""

import json
import math
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from fnmatch import fnmatch
from pathlib import Path

import torch
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

from .architectures import ARCHITECTURES, UnknownArchitectureError, architecture
from .audio import DEFAULT_SAMPLING_RATE
from .chunking import frame_duration
from .training.vocab import NORMALIZATION_FILE  # uploaded: a downloaded model is scored with its own normalization

TEMPLATE_PATH = Path(__file__).parent / "templates" / "model_card.md"
# Card fields saved beside a model (by fine-tuning) that push uses as the defaults of its card.
CARD_INFO_FILE = "card_info.json"
DEFAULT_LICENSE = "apache-2.0"  # when neither the card nor card_info.json says (an unknown language stays unknown)
UNNAMED_DATASET = "unnamed evaluation data"  # a result reported without a dataset id or name

TAGS = ["audio", "automatic-speech-recognition", "wav2vec2", "hf-wav2vec2"]

# Every file an upload folder may hold; anything else (a .bin, a checkpoint, a cache directory) is an error.
ALLOWED_FILES = (
    "README.md", "config.json", "model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors",
    "*.py", "vocab.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "processor_config.json", "preprocessor_config.json", NORMALIZATION_FILE, "adapter.*.safetensors",
)
REQUIRED_FILES = ("README.md", "config.json")

# Remote files an upload replaces or removes: weights and code of an earlier upload (a stale pytorch_model.bin
# next to new safetensors would be loaded by older clients). Other files in the repository are left alone.
# MMS adapter files are replaced one by one (an upload of one language must not delete the others).
STALE_REMOTE_FILES = ["*.bin", "*.pt", "*.pth", "*.ckpt", "model*.safetensors", "*.safetensors.index.json", "*.py"]

# The model classes defined in modeling_hf_wav2vec2.py; any of them loads any checkpoint of this package.
MODEL_AUTO_MAP = {a.auto_class: a.auto_map_entry for a in ARCHITECTURES if a.module == "modeling_hf_wav2vec2"}

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class PublishError(Exception):
    """A model that cannot be published as asked. The message is one line, meant to be shown as is."""


# --------------------------------------------------------------------------------------------------------------------
# Model card
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    """One evaluation result for the card and its ``model-index``.

    Args:
        dataset_type: Hub dataset id, e.g. "librispeech_asr" (``model-index`` ``dataset.type``). Without one the
            result is shown in the card's table only: the Hub's ``model-index`` needs a dataset id.
        dataset_name: human-readable name, e.g. "LibriSpeech (clean)"; defaults to ``dataset_type``.
        split: e.g. "test".
        config: dataset configuration, e.g. "clean".
        wer / cer: word / character error rate in percent (at least one of them).
        decoding: how the numbers were obtained, e.g. "greedy CTC, no LM" (shown in the table).
    """

    dataset_type: str | None = None
    dataset_name: str | None = None
    split: str = "test"
    config: str | None = None
    wer: float | None = None
    cer: float | None = None
    decoding: str | None = None

    def __post_init__(self):
        self.dataset_type = self.dataset_type or None
        self.dataset_name = self.dataset_name or self.dataset_type or UNNAMED_DATASET
        if self.wer is None and self.cer is None:
            raise PublishError(f"result on {self.dataset_name}: give a WER, a CER or both")
        for name in ("wer", "cer"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise PublishError(f"result on {self.dataset_name}: {name} must be a non-negative number, got {value!r}")


@dataclass
class CardInfo:
    """What the model card says besides what the config tells.

    Fields left None (or empty) are "not given": :meth:`updated` keeps the other card's value for them, and the
    rendered card says ``license: apache-2.0`` when nothing gives one; a language nothing gives is left out of the
    metadata and the card says "language not specified".

    Args:
        language: ISO 639-1 code(s) of the speech.
        license: Hub license id of the weights.
        datasets: Hub dataset ids of the training data (the datasets of ``results`` are added).
        results: evaluation results (:class:`Result`), measured on these weights; none for pre-trained models.
        results_note: a sentence under the results (e.g. where the numbers come from).
        model_name: name in ``model-index`` and the title; defaults to the repository name.
        description: first paragraph of the card.
        training_data: the "Training data" section.
        base_model: Hub id of the model this one was fine-tuned or converted from.
        tags: extra tags.
    """

    language: str | list[str] | None = None
    license: str | None = None
    datasets: list[str] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    results_note: str | None = None
    model_name: str | None = None
    description: str | None = None
    training_data: str | None = None
    base_model: str | None = None
    tags: list[str] = field(default_factory=list)

    @classmethod
    def coerce(cls, value) -> "CardInfo":
        """A CardInfo from None, a CardInfo or a dict of its fields (results as dicts or Result)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise PublishError(f"card must be a CardInfo or a dict, got {type(value).__name__}")
        unknown = set(value) - {f.name for f in fields(cls)}
        if unknown:
            raise PublishError(f"unknown card fields: {', '.join(sorted(unknown))}")
        value = dict(value)
        try:
            value["results"] = [r if isinstance(r, Result) else Result(**r) for r in value.get("results") or []]
        except TypeError as error:  # a result that is not a dict, or has fields Result does not know
            raise PublishError(f"invalid result ({error})") from None
        return cls(**value)

    def updated(self, card) -> "CardInfo":
        """A copy with the fields that ``card`` (CardInfo, dict or None) gives put over these."""
        card = CardInfo.coerce(card)
        given = {f.name: getattr(card, f.name) for f in fields(card) if getattr(card, f.name) not in (None, [])}
        return CardInfo(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **given})

    def save(self, directory) -> Path:
        """Write the fields (results as dicts) to ``directory/card_info.json``, which ``push`` reads as the
        card's defaults; returns the file's path. The file is this package's own and is rewritten."""
        path = Path(directory) / CARD_INFO_FILE
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory) -> "CardInfo | None":
        """The CardInfo saved in ``directory`` by :meth:`save`, or None when there is none."""
        path = Path(directory) / CARD_INFO_FILE
        if not path.is_file():
            return None
        try:
            return cls.coerce(json.loads(path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PublishError(f"{path}: not valid JSON ({error})") from None
        except PublishError as error:
            raise PublishError(f"{path}: {error}") from None


def _model_class_name(model_or_config) -> str:
    """This package's class of a model, or of a config's ``architectures`` (ours or transformers' names)."""
    if isinstance(model_or_config, torch.nn.Module):
        named = model_or_config
    else:
        named = getattr(model_or_config, "architectures", None) or ["HfWav2Vec2ForPreTraining"]
    try:
        return architecture(named).name
    except UnknownArchitectureError as error:
        raise PublishError(str(error)) from None


def _parameter_count(model_or_config, class_name: str) -> int:
    if isinstance(model_or_config, torch.nn.Module):
        return sum(p.numel() for p in model_or_config.parameters())
    with torch.device("meta"):  # shapes only, no memory and no initialization
        model = architecture(class_name).load()(model_or_config)
    return sum(p.numel() for p in model.parameters())


def _head_description(config, task: str) -> str:
    labels = getattr(config, "num_labels", None)
    return {
        "ctc": f"a linear CTC head over {config.vocab_size} tokens (blank = id {config.pad_token_id})",
        "pretraining": (
            f"the pre-training heads: a product quantizer with {config.num_codevector_groups} codebooks of "
            f"{config.num_codevectors_per_group} entries and the projections of the contrastive task "
            f"({config.proj_codevector_dim} dimensions)"
        ),
        "audio-classification": f"an utterance classification head (mean pooling) over {labels} labels",
        "audio-frame-classification": f"a frame classification head over {labels} labels",
        "audio-xvector": f"an x-vector head ({config.xvector_output_dim}-dimensional speaker embeddings)",
    }.get(task, "no head (the bare encoder)")


def describe_architecture(model_or_config) -> str:
    """Markdown bullet list of the architecture, read from the config."""
    config = getattr(model_or_config, "config", model_or_config)
    class_name = _model_class_name(model_or_config)
    params = _parameter_count(model_or_config, class_name)
    params = f"{params / 1e6:.1f} M" if params >= 1e6 else f"{params / 1e3:.1f} k"
    rate = DEFAULT_SAMPLING_RATE  # a config does not know its feature extractor's rate
    frame_ms = 1000 * frame_duration(config, rate)
    receptive_ms = 1000 * config.receptive_field / rate
    norm = (
        "group norm in the first layer only (fairseq `extractor_mode=default`)"
        if config.feat_extract_norm == "group"
        else "layer norm after every convolution (fairseq `extractor_mode=layer_norm`)"
    )
    head = _head_description(config, architecture(class_name).task)
    order = (
        "layer norm before each block (pre-LN)" if config.do_stable_layer_norm
        else "layer norm after each block (post-LN)"
    )
    lines = [
        f"- `{class_name}`: wav2vec 2.0 with {head}; {params} parameters.",
        (
            f"- Feature encoder: {len(config.conv_dim)} temporal convolutions ({config.conv_dim[-1]} channels, "
            f"kernels {tuple(config.conv_kernel)}, strides {tuple(config.conv_stride)}), {norm}: one frame every "
            f"{frame_ms:g} ms of {rate / 1000:g} kHz audio, {receptive_ms:g} ms receptive field."
        ),
        (
            f"- Transformer: {config.num_hidden_layers} layers, width {config.hidden_size}, "
            f"{config.num_attention_heads} attention heads, feed-forward {config.intermediate_size}, {order}; "
            f"relative positions from a convolution of kernel {config.num_conv_pos_embeddings} in "
            f"{config.num_conv_pos_embedding_groups} groups."
        ),
    ]
    return "\n".join(lines)


def _results_markdown(info: CardInfo) -> str:
    if not info.results:
        text = "No evaluation results are reported for these weights."
    else:
        rows = ["| Dataset | Split | WER (%) | CER (%) | Decoding |", "|---|---|---|---|---|"]
        for r in info.results:
            dataset = r.dataset_name + (
                f" (`{r.dataset_type}`" + (f", config `{r.config}`" if r.config else "") + ")" if r.dataset_type else ""
            )
            wer, cer = (f"{value:g}" if value is not None else "–" for value in (r.wer, r.cer))
            rows.append(f"| {dataset} | {r.split} | {wer} | {cer} | {r.decoding or '–'} |")
        text = "\n".join(rows)
    return text + (f"\n\n{info.results_note}" if info.results_note else "")


def _usage_markdown(repo_id: str, class_name: str) -> str:
    if architecture(class_name).task == "ctc":
        return f"""Transcribe speech with the pipeline that ships with the weights (audio files or arrays at any sampling rate,
resampled with soxr; long files streamed with `chunk_length_s`):

```python
from transformers import pipeline

asr = pipeline(model="{repo_id}", trust_remote_code=True)
print(asr("speech.wav")["text"])
print(asr({{"raw": samples_8khz, "sampling_rate": 8000}})["text"])
```

or step by step:

```python
import torch
from transformers import AutoModelForCTC, AutoProcessor

processor = AutoProcessor.from_pretrained("{repo_id}", trust_remote_code=True)
model = AutoModelForCTC.from_pretrained("{repo_id}", trust_remote_code=True).eval()
inputs = processor(audio=waveform, sampling_rate=16000, return_tensors="pt")  # waveform: 1-D float array, 16 kHz
with torch.no_grad():
    logits = model(**inputs).logits
print(processor.batch_decode(logits.argmax(-1)))  # greedy CTC decoding
```"""
    return f"""This checkpoint has no speech-recognition head: use it to extract representations, or fine-tune it with
CTC on transcribed speech (for example with the `hf-wav2vec2` package).

```python
import torch
from transformers import AutoFeatureExtractor, AutoModel

feature_extractor = AutoFeatureExtractor.from_pretrained("{repo_id}", trust_remote_code=True)
model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True).eval()  # the encoder, without the heads
inputs = feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")  # waveform: 1-D float array, 16 kHz
with torch.no_grad():
    hidden_states = model(**inputs).last_hidden_state  # (batch, frames, hidden_size)
```

`AutoModelForPreTraining` loads the pre-training heads as well, and
`AutoModelForCTC.from_pretrained("{repo_id}", trust_remote_code=True, vocab_size=N)` starts a CTC fine-tuning from
these weights (with a new, randomly initialized head of N outputs)."""


def card_metadata(info: CardInfo, class_name: str, model_name: str) -> ModelCardData:
    """Hub metadata: language, license, datasets, tags, library, pipeline and the model-index results."""
    is_ctc = architecture(class_name).task == "ctc"
    eval_results = []
    for r in (r for r in info.results if r.dataset_type):  # model-index entries need a dataset id
        for metric, value in (("wer", r.wer), ("cer", r.cer)):
            if value is not None:
                eval_results.append(EvalResult(
                    task_type="automatic-speech-recognition", task_name="Automatic Speech Recognition",
                    dataset_type=r.dataset_type, dataset_name=r.dataset_name, dataset_config=r.config,
                    dataset_split=r.split, metric_type=metric, metric_value=float(value),
                    metric_name=f"{r.split.capitalize()} {metric.upper()}",
                ))
    datasets = list(dict.fromkeys([*info.datasets, *(r.dataset_type for r in info.results if r.dataset_type)]))
    tags = TAGS if is_ctc else [t for t in TAGS if t != "automatic-speech-recognition"]
    return ModelCardData(
        language=info.language or None, license=info.license or DEFAULT_LICENSE, datasets=datasets or None,
        tags=list(dict.fromkeys([*tags, *info.tags])), library_name="transformers",
        pipeline_tag="automatic-speech-recognition" if is_ctc else "feature-extraction",
        base_model=info.base_model, model_name=model_name, eval_results=eval_results or None,
    )


def _language_line(language) -> str:
    if not language:
        return "Language: not specified."
    codes = [language] if isinstance(language, str) else list(language)
    return "Language: " + ", ".join(f"`{code}`" for code in codes) + "."


def fill_template(template: str, values: dict) -> str:
    """Replace every ``{{ name }}`` of ``template``; a placeholder without a value, or a value without a
    placeholder, is an error (so template and code cannot drift apart silently)."""
    names = set(_PLACEHOLDER.findall(template))
    if names != set(values):
        raise PublishError(
            f"model card template and values disagree: missing values {sorted(names - set(values))}, "
            f"unused values {sorted(set(values) - names)}"
        )
    return _PLACEHOLDER.sub(lambda match: str(values[match[1]]).strip(), template)


def render_model_card(model_or_config, repo_id: str, card=None, template_path=TEMPLATE_PATH) -> str:
    """The README.md for ``model_or_config`` (a model, or a config whose ``architectures`` names the class).

    ``card``: a :class:`CardInfo` or a dict of its fields. The result is checked to parse as a Hub model card.
    """
    info = CardInfo.coerce(card)
    class_name = _model_class_name(model_or_config)
    model_name = info.model_name or repo_id.split("/")[-1]
    is_ctc = architecture(class_name).task == "ctc"
    kind = "speech recognition (CTC)" if is_ctc else "self-supervised speech representations"
    values = {
        "metadata": card_metadata(info, class_name, model_name).to_yaml(),
        "title": model_name,
        "description": info.description or f"A wav2vec 2.0 model for {kind}, published with `hf-wav2vec2`.",
        "architecture": describe_architecture(model_or_config),
        "training_data": (info.training_data or "Not documented.") + f"\n\n{_language_line(info.language)}",
        "results": _results_markdown(info),
        "usage": _usage_markdown(repo_id, class_name),
    }
    text = fill_template(Path(template_path).read_text(encoding="utf-8"), values)
    try:
        ModelCard(text)  # parses the YAML front matter and validates the model-index
    except Exception as error:
        raise PublishError(f"the generated model card does not parse: {error}") from error
    return text


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
        raise PublishError(f"processor must be an HfWav2Vec2Processor or HfWav2Vec2FeatureExtractor, got {type(processor).__name__}")
    if isinstance(model, HfWav2Vec2ForCTC):
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is None:
            raise PublishError("a CTC model needs its tokenizer: pass processor= (HfWav2Vec2Processor) or save it with the model")
        if len(tokenizer.get_vocab()) > model.config.vocab_size:
            raise PublishError(f"the tokenizer has {len(tokenizer.get_vocab())} tokens, the CTC head only {model.config.vocab_size}")
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
    if isinstance(model_dir_or_model, (str, Path)) and (Path(model_dir_or_model) / NORMALIZATION_FILE).is_file():
        # `hf-wav2vec2 evaluate` of the downloaded model then scores with the normalization it was trained with
        shutil.copyfile(Path(model_dir_or_model) / NORMALIZATION_FILE, folder / NORMALIZATION_FILE)
    (folder / "README.md").write_text(readme, encoding="utf-8")
    check_upload_folder(folder)
    return folder


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
                repo_id=getattr(repo_url, "repo_id", None) or repo_id, folder_path=str(folder), repo_type="model",
                commit_message=commit_message or "Upload wav2vec 2.0 model with hf-wav2vec2",
                delete_patterns=STALE_REMOTE_FILES,
            )
        except (HfHubHTTPError, OSError) as error:
            raise PublishError(f"upload to {repo_id} failed: {str(error).splitlines()[0] if str(error) else error!r}") from error


__all__ = [
    "CARD_INFO_FILE", "DEFAULT_LICENSE", "CardInfo", "PublishError", "Result", "TEMPLATE_PATH",
    "card_metadata", "check_upload_folder", "describe_architecture", "fill_template",
    "prepare_upload_folder", "push_to_hub", "render_model_card",
]
