"""Model cards of published models: the fields (:class:`CardInfo`, :class:`Result`) and the README.md rendered from
the packaged template ``hf_wav2vec2/templates/model_card.md`` (the single source of truth; ``model_cards/template.md``
is a verbatim copy for readers of the repository), with Hub ``model-index`` metadata for the reported results: WER /
CER for speech recognition, accuracy for audio classifiers, whose card also lists their labels.
:mod:`hf_wav2vec2.hub` renders one into every upload folder."""

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .architectures import UnknownArchitectureError, architecture
from .audio import DEFAULT_SAMPLING_RATE
from .chunking import frame_duration

TEMPLATE_PATH = Path(__file__).parent / "templates" / "model_card.md"
# Card fields saved beside a model (by fine-tuning) that push uses as the defaults of its card.
CARD_INFO_FILE = "card_info.json"
DEFAULT_LICENSE = "apache-2.0"  # when neither the card nor card_info.json says (an unknown language stays unknown)
UNNAMED_DATASET = "unnamed evaluation data"  # a result reported without a dataset id or name

TAGS = ["audio", "automatic-speech-recognition", "wav2vec2", "hf-wav2vec2"]
CLASSIFICATION_TASK = "audio-classification"  # architectures' task of sequence classifiers, and their Hub pipeline
# tasks whose results are accuracies (speech recognition reports WER / CER, encoders nothing)
LABELLING_TASKS = frozenset({CLASSIFICATION_TASK, "audio-frame-classification", "audio-xvector"})
MAX_LABELS_LISTED = 50  # a card lists at most this many labels (a speaker-id head may have thousands)

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
        wer / cer: word / character error rate in percent, for speech recognition.
        accuracy: accuracy in percent, for audio classifiers (a result gives WER / CER or accuracy).
        decoding: how the numbers were obtained, e.g. "greedy CTC, no LM" (shown in the table).
    """

    dataset_type: str | None = None
    dataset_name: str | None = None
    split: str = "test"
    config: str | None = None
    wer: float | None = None
    cer: float | None = None
    decoding: str | None = None
    accuracy: float | None = None

    def __post_init__(self):
        self.dataset_type = self.dataset_type or None
        self.dataset_name = self.dataset_name or self.dataset_type or UNNAMED_DATASET
        if self.wer is None and self.cer is None and self.accuracy is None:
            raise PublishError(f"result on {self.dataset_name}: give a WER, a CER or both (or an accuracy)")
        if self.accuracy is not None and (self.wer is not None or self.cer is not None):
            raise PublishError(
                f"result on {self.dataset_name}: an accuracy (classifiers) or WER/CER (speech recognition), not both"
            )
        for name in ("wer", "cer", "accuracy"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise PublishError(
                    f"result on {self.dataset_name}: {name} must be a non-negative number, got {value!r}"
                )
        if self.accuracy is not None and self.accuracy > 100:
            raise PublishError(f"result on {self.dataset_name}: accuracy is in percent (0-100), got {self.accuracy}")


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


def label_names(config) -> list[str]:
    """The classifier's labels in id order (``id2label``; ``LABEL_i`` where a config names none)."""
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(config.num_labels)]


def _labels_sentence(config) -> str:
    names = label_names(config)
    shown = ", ".join(f"`{name}`" for name in names[:MAX_LABELS_LISTED])
    more = f" and {len(names) - MAX_LABELS_LISTED} more" if len(names) > MAX_LABELS_LISTED else ""
    return f"- Labels ({len(names)}, in id order): {shown}{more}."


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
        "layer norm before each block (pre-LN)"
        if config.do_stable_layer_norm
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
    if architecture(class_name).task in (CLASSIFICATION_TASK, "audio-frame-classification"):
        lines.append(_labels_sentence(config))
    return "\n".join(lines)


def _accuracy_markdown(info: CardInfo) -> str:
    rows = ["| Dataset | Split | Accuracy (%) |", "|---|---|---|"]
    for r in info.results:
        dataset = r.dataset_name + (f" (`{r.dataset_type}`)" if r.dataset_type else "")
        rows.append(f"| {dataset} | {r.split} | {r.accuracy:g} |")
    return "\n".join(rows)


def _check_metrics(info: CardInfo, classifier: bool) -> None:
    """A classifier's results are accuracies, a recognizer's WER / CER: the other kind has no column."""
    for r in info.results:
        if classifier != (r.accuracy is not None):
            wanted = "an accuracy" if classifier else "a WER or CER"
            raise PublishError(
                f"result on {r.dataset_name}: this model is {'a' if classifier else 'not a'} "
                f"classifier, its results need {wanted}"
            )


def _results_markdown(info: CardInfo, classifier: bool = False) -> str:
    if not info.results:
        text = "No evaluation results are reported for these weights."
    elif classifier:
        text = _accuracy_markdown(info)
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


def _classifier_usage(repo_id: str) -> str:
    return f"""Label audio with the pipeline that ships with the weights (files or arrays at any sampling rate,
resampled with soxr):

```python
from transformers import pipeline

classifier = pipeline(model="{repo_id}", trust_remote_code=True)
print(classifier("clip.wav", top_k=3))  # [{{"label": ..., "score": ...}}, ...], best first
print(classifier({{"raw": samples_8khz, "sampling_rate": 8000}}))
```

`pipeline("audio-classification", model="{repo_id}", trust_remote_code=True)` builds transformers' own pipeline
instead, which takes audio at its feature extractor's rate (16 kHz for most) and needs torchaudio to resample
anything else. With the
`hf-wav2vec2` package installed: `hf-wav2vec2 classify clip.wav --model {repo_id} --top_k 3`."""


def _usage_markdown(repo_id: str, class_name: str) -> str:
    task = architecture(class_name).task
    if task == CLASSIFICATION_TASK:
        return _classifier_usage(repo_id)
    if task in ("audio-frame-classification", "audio-xvector"):
        auto_class, output = (
            architecture(class_name).auto_class,
            {
                "audio-frame-classification": "logits  # (batch, frames, num_labels)",
                "audio-xvector": "embeddings  # (batch, xvector_output_dim): compare speakers by cosine similarity",
            }[task],
        )
        return f"""```python
import torch
from transformers import AutoFeatureExtractor, {auto_class}

feature_extractor = AutoFeatureExtractor.from_pretrained("{repo_id}", trust_remote_code=True)
model = {auto_class}.from_pretrained("{repo_id}", trust_remote_code=True).eval()
inputs = feature_extractor(waveform, sampling_rate=16000, return_tensors="pt")  # waveform: 1-D float array, 16 kHz
with torch.no_grad():
    output = model(**inputs).{output}
```"""
    if task == "ctc":
        return f"""Transcribe speech with the pipeline that ships with the weights (audio files or arrays at any
sampling rate, resampled with soxr; long files streamed with `chunk_length_s`):

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
    task = architecture(class_name).task
    is_ctc, is_classifier = task == "ctc", task in LABELLING_TASKS
    task_type, task_name = (
        (CLASSIFICATION_TASK, "Audio Classification")
        if is_classifier
        else ("automatic-speech-recognition", "Automatic Speech Recognition")
    )
    eval_results = []
    for r in (r for r in info.results if r.dataset_type):  # model-index entries need a dataset id
        for metric, value in (("wer", r.wer), ("cer", r.cer), ("accuracy", r.accuracy)):
            if value is not None:
                eval_results.append(
                    EvalResult(
                        task_type=task_type,
                        task_name=task_name,
                        dataset_type=r.dataset_type,
                        dataset_name=r.dataset_name,
                        dataset_config=r.config,
                        dataset_split=r.split,
                        metric_type=metric,
                        metric_value=float(value),
                        metric_name=f"{r.split.capitalize()} {metric.upper() if metric != 'accuracy' else 'Accuracy'}",
                    )
                )
    datasets = list(dict.fromkeys([*info.datasets, *(r.dataset_type for r in info.results if r.dataset_type)]))
    tags = TAGS if is_ctc else [t for t in TAGS if t != "automatic-speech-recognition"]
    if task == CLASSIFICATION_TASK:
        tags = [*tags, CLASSIFICATION_TASK]
    # frame labels and x-vectors have no Hub pipeline: no widget rather than a wrong one
    pipeline_tag = {
        "ctc": "automatic-speech-recognition",
        CLASSIFICATION_TASK: CLASSIFICATION_TASK,
        "encoder": "feature-extraction",
        "pretraining": "feature-extraction",
    }.get(task)
    return ModelCardData(
        language=info.language or None,
        license=info.license or DEFAULT_LICENSE,
        datasets=datasets or None,
        tags=list(dict.fromkeys([*tags, *info.tags])),
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        base_model=info.base_model,
        model_name=model_name,
        eval_results=eval_results or None,
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
    task = architecture(class_name).task
    config = getattr(model_or_config, "config", model_or_config)
    kind = {
        "ctc": "speech recognition (CTC)",
        CLASSIFICATION_TASK: f"audio classification ({getattr(config, 'num_labels', 0)} labels)",
        "audio-frame-classification": f"frame labelling ({getattr(config, 'num_labels', 0)} labels)",
        "audio-xvector": "speaker embeddings (x-vectors)",
    }.get(task, "self-supervised speech representations")
    _check_metrics(info, classifier=task in LABELLING_TASKS)
    values = {
        "metadata": card_metadata(info, class_name, model_name).to_yaml(),
        "title": model_name,
        "description": info.description or f"A wav2vec 2.0 model for {kind}, published with `hf-wav2vec2`.",
        "architecture": describe_architecture(model_or_config),
        "training_data": (info.training_data or "Not documented.") + f"\n\n{_language_line(info.language)}",
        "results": _results_markdown(info, classifier=task in LABELLING_TASKS),
        "usage": _usage_markdown(repo_id, class_name),
    }
    text = fill_template(Path(template_path).read_text(encoding="utf-8"), values)
    try:
        ModelCard(text)  # parses the YAML front matter and validates the model-index
    except Exception as error:
        raise PublishError(f"the generated model card does not parse: {error}") from error
    return text
