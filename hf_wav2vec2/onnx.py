"""ONNX export of CTC models and an ONNX Runtime model that the pipeline and the CLI run like the PyTorch one.

Needs the ``onnx`` extra (``pip install -e ".[onnx]"``: onnx, onnxscript for ``torch.onnx.export``, onnxruntime).

* :func:`export_onnx`: a CTC checkpoint (ours or transformers', a directory, a Hub id or a loaded model) ->
  ``OUT/model.onnx`` with dynamic batch and length axes, inputs ``input_values`` (B, L) float32 and
  ``attention_mask`` (B, L) int64, output ``logits`` (B, T, V); beside it the config and the processor, so the
  folder is a model directory for :class:`OnnxWav2Vec2ForCTC`, the pipeline and ``hf-wav2vec2 transcribe --onnx``.
  ``quantize="int8"`` adds ``OUT/model_int8.onnx`` (:func:`quantize_onnx`).
* :func:`quantize_onnx`: onnxruntime's dynamic int8 quantization of every MatMul with a constant weight.
* :class:`OnnxWav2Vec2ForCTC`: an onnxruntime session that answers like ``HfWav2Vec2ForCTC`` in eval mode
  (``model(input_values, attention_mask).logits``, ``config``, ``_get_feat_extract_output_lengths``), so
  ``HfWav2Vec2AutomaticSpeechRecognitionPipeline(model=OnnxWav2Vec2ForCTC.from_pretrained(OUT), ...)`` works.

The exported graph computes the conv feature encoder channels-last, each convolution as strided slices
concatenated into patches and one MatMul (the same sums as ``Conv1d``): the conv stack is a third of a BASE
model's FLOPs, and onnxruntime's int8 convolution (ConvInteger) is slower than its float one, while its int8 MatMul
is fast, so only this form lets int8 reach the conv stack. It also saves the (B, C, T) <-> (B, T, C) transposes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "ONNX_FILE",
    "ONNX_INT8_FILE",
    "OnnxExportError",
    "OnnxWav2Vec2ForCTC",
    "export_onnx",
    "onnx_model",
    "quantize_onnx",
]

ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model_int8.onnx"
# A single ONNX file holds at most 2 GB (protobuf); larger models keep their weights in a side file.
_SINGLE_FILE_LIMIT = 1_800_000_000
_EXTRA_HINT = 'pip install -e ".[onnx]" (or pip install onnx onnxscript onnxruntime)'


class OnnxExportError(ValueError):
    """Export, quantization or loading of an ONNX model failed; the message is one line naming the file."""


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"hf_wav2vec2.onnx needs {module.split('.')[0]}: {_EXTRA_HINT}") from None


# ----------------------------------------------------------------------------------------------- the export graph


class _PatchConv(nn.Module):
    """``Conv1d`` (no padding, no dilation, one group) on channels-last input as patches @ weight.

    Patches are ``kernel`` strided slices of the input concatenated along channels, so the weight (O, C, k) is laid
    out as (k * C, O): row ``i * C + c`` multiplies input channel ``c`` at offset ``i``.
    """

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        if conv.groups != 1 or conv.dilation[0] != 1 or conv.padding[0] != 0:
            raise OnnxExportError("feature encoder: only plain convolutions (no groups, dilation, padding) export")
        self.kernel, self.stride = conv.kernel_size[0], conv.stride[0]
        weight = conv.weight.detach()  # (O, C, k)
        self.weight = nn.Parameter(
            weight.permute(2, 1, 0).reshape(-1, weight.shape[0]).contiguous(), requires_grad=False
        )
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)

    def forward(self, x):  # (B, L, C) -> (B, T, O)
        frames = (x.shape[1] - self.kernel) // self.stride + 1
        end = self.stride * (frames - 1) + 1
        patches = torch.cat([x[:, i : i + end : self.stride] for i in range(self.kernel)], dim=-1)
        out = patches @ self.weight
        return out if self.bias is None else out + self.bias


class _ChannelsLastFeatureEncoder(nn.Module):
    """The conv feature encoder of a model, computed channels-last: (B, L) -> (B, T, C), equal to
    ``FeatureEncoder(x).transpose(1, 2)``."""

    def __init__(self, feature_encoder: nn.Module):
        super().__init__()
        self.convs = nn.ModuleList(_PatchConv(layer.conv) for layer in feature_encoder.conv_layers)
        self.norms = nn.ModuleList(
            layer.layer_norm if layer.norm is not None else nn.Identity() for layer in feature_encoder.conv_layers
        )
        self.kinds = [layer.norm for layer in feature_encoder.conv_layers]
        self.activations = [layer.activation for layer in feature_encoder.conv_layers]

    def forward(self, input_values):
        x = input_values[:, :, None]
        for conv, norm, kind, activation in zip(self.convs, self.norms, self.kinds, self.activations, strict=True):
            x = conv(x)
            if kind == "group":  # one group per channel: normalize each channel over time
                mean = x.mean(dim=1, keepdim=True)
                var = (x - mean).square().mean(dim=1, keepdim=True)
                x = (x - mean) * torch.rsqrt(var + norm.eps) * norm.weight + norm.bias
            elif kind == "layer":
                x = norm(x)
            x = activation(x)
        return x


class _ExportableCTC(nn.Module):
    """``HfWav2Vec2ForCTC`` in eval mode as a graph: (input_values, attention_mask) -> logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.feature_encoder = _ChannelsLastFeatureEncoder(model.wav2vec2.feature_extractor)

    def forward(self, input_values, attention_mask):
        base = self.model.wav2vec2
        features = self.feature_encoder(input_values)  # (B, T, C)
        hidden, _ = base.feature_projection(features)
        frame_mask = self.model._frame_mask(attention_mask, features.shape[1])
        last, _, _ = base.encoder(hidden, frame_mask)
        return self.model.lm_head(last)


# ----------------------------------------------------------------------------------------------- export


def _load_ctc_model(model: Any) -> nn.Module:
    """A loaded ``HfWav2Vec2ForCTC`` from a model, a directory or a Hub id (transformers' checkpoints convert)."""
    from .modeling_hf_wav2vec2 import HfWav2Vec2ForCTC

    if isinstance(model, HfWav2Vec2ForCTC):
        return model
    if isinstance(model, nn.Module):
        if type(model).__name__ == "Wav2Vec2ForCTC":  # transformers' own, in memory: through its saved form
            with tempfile.TemporaryDirectory() as tmp:
                model.save_pretrained(tmp)
                return HfWav2Vec2ForCTC.from_pretrained(tmp)
        raise OnnxExportError(
            f"export_onnx: model must be a CTC model (HfWav2Vec2ForCTC or a directory of one), "
            f"got {type(model).__name__}"
        )
    source = os.fspath(model)
    if os.path.isdir(source) and not os.path.isfile(os.path.join(source, "config.json")):
        raise OnnxExportError(f"{source}: not a model directory (no config.json)")
    try:
        return HfWav2Vec2ForCTC.from_pretrained(source)
    except (OSError, ValueError, TypeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OnnxExportError(f"{source}: cannot load a CTC model to export ({first})") from None


def _example_inputs(config: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of two: batch 2 and an unusual length keep torch.export from specializing either axis."""
    length = max(4 * config.receptive_field, 16000) + 123
    values = torch.randn(2, length)
    mask = torch.ones(2, length, dtype=torch.long)
    mask[1, length // 2 :] = 0
    return values, mask


def _export_graph(model: nn.Module, path: Path, opset: int | None) -> None:
    _require("onnx")
    _require("onnxscript")
    wrapper = _ExportableCTC(model).eval()
    values, mask = _example_inputs(model.config)
    batch = torch.export.Dim("batch", min=1)
    length = torch.export.Dim("length", min=model.config.receptive_field)
    large = sum(p.numel() * p.element_size() for p in model.parameters()) > _SINGLE_FILE_LIMIT
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation notes are not the user's business
        program = torch.onnx.export(
            wrapper,
            (values, mask),
            dynamo=True,
            opset_version=opset,
            verbose=False,
            input_names=["input_values", "attention_mask"],
            output_names=["logits"],
            dynamic_shapes=({0: batch, 1: length}, {0: batch, 1: length}),
        )
    program.save(str(path), external_data=large)


#: Initializers of the conv feature encoder's MatMuls in the exported graph (``_ChannelsLastFeatureEncoder``).
_CONV_WEIGHT_PREFIX = "feature_encoder.convs."


def _conv_stack_matmuls(source: Path) -> list[str]:
    """Names of the MatMul nodes of ``source`` that compute the conv feature encoder (read without weight data)."""
    onnx = _require("onnx")
    graph = onnx.load(str(source), load_external_data=False).graph
    return [
        n.name for n in graph.node if n.op_type == "MatMul" and any(x.startswith(_CONV_WEIGHT_PREFIX) for x in n.input)
    ]


def quantize_onnx(
    source: str | os.PathLike, target: str | os.PathLike, mode: str = "int8", *, conv_stack: bool = False
) -> Path:
    """Dynamic int8 quantization (onnxruntime) of ``source`` into ``target``: weights of every MatMul with a
    constant weight (projections, feed-forward, the CTC head; the conv stack only with ``conv_stack``) stored int8
    per output channel, activations quantized per call. Attention's score and value products stay float.

    The conv feature encoder stays fp32 by default: quantizing it (one int8 scale per call for the activations of a
    whole layer) moved the main job's held-out CER from 60.7 % to 67.1 %, while the transformer and head alone in
    int8 changed it by +0.2 points (``benchmarks/results/performance_cpu.md``). ``conv_stack=True`` trades that for
    speed (for BASE the conv stack is about a third of the FLOPs).

    Weights are signed int8 with 7-bit range (``reduce_range``): without VNNI, x86 CPUs multiply u8 x s8 pairs
    into int16 with saturation, which the 7-bit range avoids (onnxruntime's advice for AVX2 machines).
    """
    if mode != "int8":
        raise OnnxExportError(f"quantize_onnx: mode must be 'int8', got {mode!r}")
    quantization = _require("onnxruntime.quantization")
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise OnnxExportError(f"{source}: no such ONNX file")
    large = source.stat().st_size > _SINGLE_FILE_LIMIT or any(source.parent.glob(source.name + ".data"))
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime logs a "consider pre-processing" warning through the root logger
    try:
        quantization.quantize_dynamic(
            source,
            target,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            reduce_range=True,
            nodes_to_exclude=[] if conv_stack else _conv_stack_matmuls(source),
            weight_type=quantization.QuantType.QInt8,
            use_external_data_format=large,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root.setLevel(level)
    return target


def _save_processor(source: Any, out: Path) -> bool:
    """Copy the processor (tokenizer + feature extractor) next to the graph; False when the source has none."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    from .processing_hf_wav2vec2 import HfWav2Vec2Processor

    try:
        processor = HfWav2Vec2Processor.from_pretrained(os.fspath(source))
    except (OSError, ValueError, TypeError, KeyError):
        return False
    processor.save_pretrained(out)
    return True


def export_onnx(
    model: Any,
    out: str | os.PathLike,
    *,
    quantize: str | None = None,
    opset: int | None = None,
    overwrite: bool = False,
    int8_conv_stack: bool = False,
) -> Path:
    """Export a CTC model to ``out/model.onnx`` (dynamic batch and length), with its config and processor.

    Args:
        model: ``HfWav2Vec2ForCTC`` (or transformers' ``Wav2Vec2ForCTC``), or a directory / Hub id of one.
        out: Folder to write (created). Existing ONNX files there are kept unless ``overwrite``.
        quantize: ``"int8"`` also writes ``out/model_int8.onnx`` (:func:`quantize_onnx`).
        int8_conv_stack: quantize the conv feature encoder too (faster, less accurate: see :func:`quantize_onnx`).
        opset: ONNX opset (default: the exporter's).

    Returns the folder. Raises :class:`OnnxExportError` (one line) for bad input and existing files.
    """
    if quantize not in (None, "int8"):
        raise OnnxExportError(f"export_onnx: quantize must be None or 'int8', got {quantize!r}")
    if int8_conv_stack and not quantize:
        raise OnnxExportError("export_onnx: int8_conv_stack needs quantize='int8' (--int8_conv_stack needs --int8)")
    out = Path(out)
    targets = [out / ONNX_FILE] + ([out / ONNX_INT8_FILE] if quantize else [])
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:
        raise OnnxExportError(f"{existing[0]}: already exists (pass overwrite=True / --overwrite to replace it)")
    if out.exists() and not out.is_dir():
        raise OnnxExportError(f"{out}: exists and is not a folder")
    loaded = _load_ctc_model(model)
    was_training = loaded.training
    loaded.eval()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=out) as tmp:  # a failed export leaves no half-written model.onnx
            staged = Path(tmp) / ONNX_FILE
            _export_graph(loaded, staged, opset)
            if quantize:
                quantize_onnx(staged, Path(tmp) / ONNX_INT8_FILE, conv_stack=int8_conv_stack)
            for produced in Path(tmp).iterdir():
                shutil.move(str(produced), out / produced.name)
    finally:
        loaded.train(was_training)
    loaded.config.save_pretrained(out)
    _save_processor(model, out)
    return out


# ----------------------------------------------------------------------------------------------- loading


def _saved_folder(model: Any) -> Path | None:
    """The folder a model was loaded from or exported to, when it holds a config (else None)."""
    if isinstance(model, OnnxWav2Vec2ForCTC):
        return model.path.parent
    source = model if isinstance(model, (str, os.PathLike)) else getattr(model, "name_or_path", None)
    if not source or not Path(source, "config.json").is_file():
        return None
    return Path(source)


def onnx_model(
    model: Any, *, int8: bool = False, cache_dir: str | os.PathLike | None = None, num_threads: int | None = None
) -> OnnxWav2Vec2ForCTC:
    """An ONNX Runtime model (int8 with ``int8``) for ``model``, exporting only when no exported graph exists.

    ``model``: an :class:`OnnxWav2Vec2ForCTC`, a CTC model, a model directory or a Hub id. The folder it comes from
    is searched for ``model_int8.onnx`` / ``model.onnx`` first (``export_onnx`` writes them); an fp32 graph there
    is quantized into ``cache_dir``, never next to it. Exports go to ``cache_dir`` (kept), by default a temporary
    folder removed with the returned model.
    """
    if isinstance(model, OnnxWav2Vec2ForCTC) and model.is_int8 == int8:
        return model
    folder = _saved_folder(model)
    wanted = ONNX_INT8_FILE if int8 else ONNX_FILE
    if folder is not None and (folder / wanted).is_file():
        return OnnxWav2Vec2ForCTC.from_pretrained(folder, int8=int8, num_threads=num_threads)
    tmp = None
    if cache_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="hf_wav2vec2_onnx_")
        cache_dir = tmp.name
    cache_dir = Path(cache_dir)
    if folder is not None and (folder / ONNX_FILE).is_file():  # int8 wanted, only the fp32 graph exported
        if (cache_dir / ONNX_INT8_FILE).exists():
            raise OnnxExportError(
                f"{cache_dir / ONNX_INT8_FILE}: already exists; load it with "
                "OnnxWav2Vec2ForCTC.from_pretrained(..., int8=True)"
            )
        cache_dir.mkdir(parents=True, exist_ok=True)
        quantize_onnx(folder / ONNX_FILE, cache_dir / ONNX_INT8_FILE)
        shutil.copyfile(folder / "config.json", cache_dir / "config.json")
    else:
        export_onnx(
            folder if isinstance(model, OnnxWav2Vec2ForCTC) else model, cache_dir, quantize="int8" if int8 else None
        )
    loaded = OnnxWav2Vec2ForCTC.from_pretrained(cache_dir, int8=int8, num_threads=num_threads)
    loaded._tmp = tmp  # the session has read the file; the folder is its name_or_path while it lives
    return loaded


# ----------------------------------------------------------------------------------------------- inference


class OnnxWav2Vec2ForCTC:
    """A CTC model exported by :func:`export_onnx`, run by onnxruntime; called like ``HfWav2Vec2ForCTC``.

    ``model(input_values, attention_mask=None)`` returns a ``CausalLMOutput`` whose ``logits`` are a CPU float32
    tensor. Without ``attention_mask`` every sample counts (as the PyTorch model without one).
    """

    main_input_name = "input_values"
    input_modalities = "audio"
    training = False

    def __init__(
        self,
        path: str | os.PathLike,
        config: Any,
        *,
        num_threads: int | None = None,
        providers: list[str] | None = None,
    ):
        ort = _require("onnxruntime")
        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxExportError(
                f"{self.path}: no such ONNX file (write one with export_onnx or hf-wav2vec2 export-onnx)"
            )
        options = ort.SessionOptions()
        # onnxruntime's default pool takes every core; torch's thread setting is what users already tune
        options.intra_op_num_threads = int(num_threads or torch.get_num_threads())
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types for unreadable files
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise OnnxExportError(f"{self.path}: onnxruntime cannot load it ({first})") from None
        self.config = config
        self.name_or_path = str(self.path.parent)
        self.is_int8 = self.path.name == ONNX_INT8_FILE

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, *, int8: bool = False, file_name: str | None = None, **kwargs: Any
    ) -> OnnxWav2Vec2ForCTC:
        """Load ``directory/model.onnx`` (``model_int8.onnx`` with ``int8=True``, or ``file_name``) and its config."""
        from .configuration_hf_wav2vec2 import HfWav2Vec2Config

        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise OnnxExportError(f"{directory}: not an exported model folder (no config.json)")
        name = file_name or (ONNX_INT8_FILE if int8 else ONNX_FILE)
        if not (directory / name).is_file():
            hint = " (export with quantize='int8' / --int8)" if name == ONNX_INT8_FILE else ""
            raise OnnxExportError(f"{directory / name}: no such ONNX file{hint}")
        config = HfWav2Vec2Config.from_pretrained(directory)
        return cls(directory / name, config, **kwargs)

    # ---- the parts of the PreTrainedModel interface the pipeline and the CLI use

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def to(self, *args: Any, **kwargs: Any) -> OnnxWav2Vec2ForCTC:
        device = kwargs.get("device", args[0] if args else None)
        if device is not None and not isinstance(device, torch.dtype) and torch.device(device).type != "cpu":
            raise OnnxExportError(f"{self.path}: the ONNX model runs on the CPU here, not on {device}")
        return self

    def eval(self) -> OnnxWav2Vec2ForCTC:
        return self

    def can_generate(self) -> bool:
        return False

    def _get_feat_extract_output_lengths(self, input_lengths: Any, add_adapter: Any = None) -> Any:
        from .modules_hf_wav2vec2 import conv_output_lengths

        return conv_output_lengths(input_lengths, self.config.conv_kernel, self.config.conv_stride)

    def __call__(self, input_values: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
        return self.forward(input_values, attention_mask=attention_mask, **kwargs)

    def forward(self, input_values: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
        import numpy as np
        from transformers.modeling_outputs import CausalLMOutput

        unused = sorted(k for k, v in kwargs.items() if v is not None and v is not False and k != "return_dict")
        if unused:
            raise OnnxExportError(
                f"{self.path}: the ONNX model only takes input_values and attention_mask, not {', '.join(unused)}"
            )
        values = torch.as_tensor(input_values).detach().to("cpu", torch.float32)
        if values.dim() != 2:
            raise ValueError(f"input_values must be (batch, samples), got shape {tuple(values.shape)}")
        if values.shape[-1] < self.config.receptive_field:
            raise ValueError(
                f"input is {values.shape[-1]} samples; the model needs at least "
                f"{self.config.receptive_field} (its receptive field) to produce one frame"
            )
        if attention_mask is None:
            mask = np.ones(tuple(values.shape), dtype=np.int64)
        else:
            mask = torch.as_tensor(attention_mask).detach().to("cpu", torch.long).numpy()
        logits = self.session.run(["logits"], {"input_values": values.contiguous().numpy(), "attention_mask": mask})
        return CausalLMOutput(logits=torch.from_numpy(logits[0]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path})"


def describe(directory: str | os.PathLike) -> dict:
    """What an exported folder holds (for the CLI): the ONNX files present and the config's model size."""
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    files = {p.name: p.stat().st_size for p in sorted(directory.glob("*.onnx*"))}
    return {
        "folder": str(directory),
        "files": files,
        "hidden_size": config.get("hidden_size"),
        "num_hidden_layers": config.get("num_hidden_layers"),
    }
