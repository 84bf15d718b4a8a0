"""MMS per-language adapters (Pratap et al., 2023, arXiv:2305.13516), with transformers' API and file format.

A multilingual MMS model (``facebook/mms-1b-all``: one encoder, 1162 languages) keeps, beside its weights, one
``adapter.<lang>.safetensors`` per language holding exactly that language's adapter weights (every layer's
``adapter_layer``) and its CTC head (``lm_head``). Switching language swaps those weights, and the head's size
when the language's vocabulary has another size. Adapter-only fine-tuning for a new language trains just them
(about 2M parameters for mms-1b-all) and writes one new file.

:class:`AdapterMixin` gives every model class of this package transformers' methods (``load_adapter``,
``_get_adapters``, ``init_adapter_layers``, ``from_pretrained(..., target_lang=...)``) plus public ones
(``adapter_state_dict``, ``save_adapter``, ``freeze_all_but_adapters``). transformers' PEFT mixin has a
``load_adapter`` too; as in transformers' ``Wav2Vec2ForCTC``, MMS's meaning wins here, and PEFT adapters are
reached through ``load_peft_adapter`` (or ``load_adapter`` given a path, a Hub id or PEFT's keywords).
"""

import importlib.util
import os
from pathlib import Path

import torch
from torch import nn
from transformers.integrations import PeftAdapterMixin
from transformers.utils import cached_file, logging

from .linear_hf_wav2vec2 import Linear
from .modules_hf_wav2vec2 import AttnAdapterLayer

logger = logging.get_logger(__name__)

ADAPTER_SAFE_FILE = "adapter.{}.safetensors"
ADAPTER_PT_FILE = "adapter.{}.bin"
# from_pretrained keywords that say where files come from; load_adapter needs the same for the adapter file
HUB_KWARGS = ("cache_dir", "force_download", "proxies", "local_files_only", "token", "revision", "subfolder")
# keywords only PEFT's load_adapter takes: a call with any of them means a PEFT adapter
PEFT_KWARGS = frozenset(
    {
        "peft_model_id",
        "adapter_name",
        "peft_config",
        "adapter_state_dict",
        "low_cpu_mem_usage",
        "is_trainable",
        "hotswap",
        "adapter_kwargs",
        "load_config",
        "device_map",
        "max_memory",
        "offload_folder",
        "offload_index",
    }
)


def check_language(target_lang, where: str) -> str:
    """A language id usable in a file name (``eng``, ``spa``, ``cmn-script_simplified``), else a one-line error."""
    if not isinstance(target_lang, str) or not target_lang.strip() or target_lang != target_lang.strip():
        raise ValueError(f"{where}: target_lang must be a non-empty language id such as 'spa', got {target_lang!r}")
    if any(sep in target_lang for sep in ("/", "\\", os.sep)) or target_lang.startswith("."):
        raise ValueError(f"{where}: target_lang {target_lang!r} is no language id (it looks like a path)")
    return target_lang


def available_adapters(directory) -> list[str]:
    """The languages with an ``adapter.<lang>.safetensors`` or ``.bin`` file in a local ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    names = {
        p.name[len("adapter.") : -len(suffix)]
        for suffix in (".safetensors", ".bin")
        for p in directory.glob(f"adapter.*{suffix}")
    }
    return sorted(names)


def read_adapter_file(path) -> dict[str, torch.Tensor]:
    """Tensors of an adapter file: safetensors, or a torch file read with ``weights_only=True`` (no unpickling)."""
    path = str(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's message for a pickle it refuses spans many lines
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: not a plain tensor file (read with weights_only=True): {first}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    return state


def peft_available() -> bool:
    return importlib.util.find_spec("peft") is not None


def _listing(names, limit=6) -> str:
    names = sorted(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


class AdapterMixin:
    """MMS adapter methods for the model classes (they provide ``config``, ``base_model_prefix`` and
    optionally ``lm_head``). ``target_lang`` is the language whose adapter weights are loaded (None: those of the
    checkpoint itself, English for mms-1b-all)."""

    target_lang: str | None = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, target_lang: str | None = None, **kwargs):
        """transformers' ``from_pretrained``; ``target_lang`` then loads that language's adapter file from the same
        place (``adapter.<lang>.safetensors`` beside the weights), as transformers' ``Wav2Vec2ForCTC`` does."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        if target_lang is not None:
            model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True gives a pair
            hub = {name: kwargs[name] for name in HUB_KWARGS if name in kwargs}
            model.load_adapter(target_lang, **hub)
        return loaded

    # ----- which weights are the adapters -----

    def _get_adapters(self) -> dict[str, nn.Parameter]:
        """The adapter parameters by name: every ``adapter_layer`` and, for CTC models, ``lm_head`` (transformers'
        method; the HF fine-tuning recipe sets ``requires_grad`` on these)."""
        if getattr(self.config, "adapter_attn_dim", None) is None:
            raise ValueError(f"{type(self).__name__} has no adapter layers: config.adapter_attn_dim is None")
        weights = {}
        for name, module in self.named_modules():
            if isinstance(module, AttnAdapterLayer):
                for param_name, param in module.named_parameters():
                    weights[f"{name}.{param_name}"] = param
        head = getattr(self, "lm_head", None)
        if head is not None:
            for param_name, param in head.named_parameters():
                weights[f"lm_head.{param_name}"] = param
        return weights

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """What an ``adapter.<lang>.safetensors`` file holds: the adapter weights and the CTC head, detached."""
        return {name: param.detach() for name, param in self._get_adapters().items()}

    def init_adapter_layers(self):
        """(Re-)initialize the adapters and the CTC head for adapter-only fine-tuning of a new language.

        Same distributions as the model's own init (norms 1 / 0, linear weights N(0, initializer_range), biases 0),
        applied unconditionally: transformers' init helpers skip weights already loaded from a checkpoint.
        """
        std = self.config.initializer_range
        modules = [m for m in self.modules() if isinstance(m, AttnAdapterLayer)]
        head = getattr(self, "lm_head", None)
        with torch.no_grad():
            for module in modules:
                nn.init.ones_(module.norm.weight)
                nn.init.zeros_(module.norm.bias)
            for linear in [layer for m in modules for layer in (m.linear_1, m.linear_2)] + [head] * (head is not None):
                nn.init.normal_(linear.weight, mean=0.0, std=std)
                nn.init.zeros_(linear.bias)

    def freeze_all_but_adapters(self) -> dict[str, nn.Parameter]:
        """Freeze every parameter except the adapters and the CTC head (adapter-only fine-tuning); returns those.

        The HF recipe's ``freeze_base_model()`` then ``requires_grad=True`` on ``_get_adapters()``, in one call.
        """
        adapters = self._get_adapters()
        for param in self.parameters():
            param.requires_grad = False
        for param in adapters.values():
            param.requires_grad = True
        return adapters

    # ----- files -----

    def save_adapter(
        self, save_directory, target_lang: str | None = None, safe_serialization: bool = True, overwrite: bool = False
    ) -> Path:
        """Write ``adapter.<lang>.safetensors`` (``.bin`` with ``safe_serialization=False``) into
        ``save_directory``: this language's adapters and CTC head, the file ``load_adapter(lang)`` reads.

        ``target_lang`` defaults to the loaded language. An existing file is kept (error) unless ``overwrite``.
        """
        lang = target_lang if target_lang is not None else self.target_lang
        if lang is None:
            raise ValueError("save_adapter: pass target_lang (no language adapter has been loaded into this model)")
        check_language(lang, "save_adapter")
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"save_adapter: {directory} is a file, not a directory")
        path = directory / (ADAPTER_SAFE_FILE if safe_serialization else ADAPTER_PT_FILE).format(lang)
        if path.exists() and not overwrite:
            raise FileExistsError(f"save_adapter: {path} exists; pass overwrite=True to replace it")
        directory.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.contiguous().cpu().clone() for name, tensor in self.adapter_state_dict().items()}
        if safe_serialization:
            from safetensors.torch import save_file

            save_file(state, str(path), metadata={"format": "pt"})
        else:
            torch.save(state, path)
        return path

    def load_peft_adapter(self, *args, **kwargs):
        """transformers' PEFT ``load_adapter`` (LoRA and the like; needs the ``peft`` package), which MMS's
        ``load_adapter`` hides on this class."""
        if not peft_available():
            what = repr(args[0]) if args else "..."
            raise ImportError(
                f"load_adapter({what}): a path, Hub id or PEFT keyword means a PEFT adapter, which needs "
                "the peft package (pip install peft); MMS adapters are named by language, e.g. 'spa'"
            )
        return PeftAdapterMixin.load_adapter(self, *args, **kwargs)

    def load_adapter(self, target_lang: str, force_load: bool = True, **kwargs):
        """Load the MMS adapter weights and CTC head of ``target_lang`` (transformers' ``Wav2Vec2ForCTC`` API).

        Reads ``adapter.<lang>.safetensors`` (else ``adapter.<lang>.bin``, with ``weights_only=True``) from where
        the model was loaded (``config._name_or_path``: a directory or a Hub id; ``cache_dir``, ``token``,
        ``revision``, ``local_files_only``, ... as in ``from_pretrained``). The file must hold exactly this model's
        adapter keys (missing or extra ones are an error naming them); a head of another size replaces ``lm_head``
        and ``config.vocab_size``. ``force_load=False`` skips loading the language already loaded.

        A PEFT adapter (a path or Hub id with a "/", or PEFT's keywords such as ``adapter_name``) goes to
        :meth:`load_peft_adapter`.
        """
        peft_style = not isinstance(force_load, bool) or PEFT_KWARGS & kwargs.keys()
        if peft_style or (isinstance(target_lang, str) and ("/" in target_lang or os.path.isdir(target_lang))):
            positional = () if isinstance(force_load, bool) else (force_load,)
            logger.info(f"load_adapter({target_lang!r}): not a language id, loading it as a PEFT adapter")
            return self.load_peft_adapter(target_lang, *positional, **kwargs)
        check_language(target_lang, "load_adapter")
        if getattr(self.config, "adapter_attn_dim", None) is None:
            raise ValueError(
                f"load_adapter({target_lang!r}): this model has no MMS adapters (config.adapter_attn_dim "
                "is None); for a PEFT adapter use load_peft_adapter(path_or_hub_id)"
            )
        if target_lang == self.target_lang and not force_load:
            logger.warning(f"Adapter weights are already set to {target_lang}.")
            return
        unknown = set(kwargs) - set(HUB_KWARGS) - {"use_safetensors"}
        if unknown:
            raise TypeError(f"load_adapter got unexpected keyword arguments: {', '.join(sorted(unknown))}")
        path = self._adapter_file(target_lang, **kwargs)
        self._load_adapter_weights(read_adapter_file(path), path)
        self.target_lang = target_lang

    def _adapter_file(self, target_lang, use_safetensors=None, **hub) -> str:
        """Local path of the language's adapter file (downloaded if the model came from the Hub)."""
        source = self.config._name_or_path
        if not source:
            raise ValueError(
                f"load_adapter({target_lang!r}): the model was not loaded from a directory or Hub id "
                "(config._name_or_path is empty), so there is nowhere to read adapter files from"
            )
        names = [ADAPTER_SAFE_FILE.format(target_lang)] if use_safetensors is not False else []
        names += [] if use_safetensors else [ADAPTER_PT_FILE.format(target_lang)]
        for name in names:
            path = cached_file(
                source,
                name,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
                **hub,
            )
            if path is not None:
                return path
        local = Path(source) / hub.get("subfolder", "")
        have = available_adapters(local)
        listing = f"; adapters there: {_listing(have)}" if have else ""
        raise FileNotFoundError(f"load_adapter: no {' or '.join(names)} in {source}{listing}")

    def _load_adapter_weights(self, state: dict, path):
        """Check ``state`` against this model's adapter keys and shapes, swap the head size, copy the weights."""
        expected = self._get_adapters()
        prefix = f"{self.base_model_prefix}."
        renamed = {}
        for key, value in state.items():
            if key not in expected and key.startswith(prefix) and key[len(prefix) :] in expected:
                key = key[len(prefix) :]  # a CTC model's file loaded into the bare encoder
            elif key.startswith("lm_head.") and "lm_head.weight" not in expected:
                continue  # the head of a CTC model: this model has none
            renamed[key] = value
        name = os.path.basename(str(path))
        missing, extra = expected.keys() - renamed.keys(), renamed.keys() - expected.keys()
        if missing or extra:
            parts = [
                f"missing keys {_listing(missing)}" if missing else "",
                f"unexpected keys {_listing(extra)}" if extra else "",
            ]
            raise ValueError(f"{name}: not an adapter file for this model: {'; '.join(p for p in parts if p)}")
        head = getattr(self, "lm_head", None)
        if head is not None:
            weight, bias = renamed["lm_head.weight"], renamed["lm_head.bias"]
            if weight.dim() != 2 or weight.shape[1] != head.in_features or tuple(bias.shape) != weight.shape[:1]:
                raise ValueError(
                    f"{name}: lm_head.weight {tuple(weight.shape)} / lm_head.bias {tuple(bias.shape)} do "
                    f"not fit a head over hidden size {head.in_features}"
                )
        for key, value in renamed.items():
            if not key.startswith("lm_head.") and value.shape != expected[key].shape:
                raise ValueError(
                    f"{name}: {key} has shape {tuple(value.shape)}, the model {tuple(expected[key].shape)}"
                    " (another adapter_attn_dim or hidden_size?)"
                )
        if head is not None and renamed["lm_head.weight"].shape[0] != head.out_features:
            # the language's vocabulary has another size: a new head, and the config follows
            self.lm_head = Linear(
                head.in_features, renamed["lm_head.weight"].shape[0], device=head.weight.device, dtype=head.weight.dtype
            )
            self.config.vocab_size = self.lm_head.out_features
            expected = self._get_adapters()
        with torch.no_grad():
            for key, value in renamed.items():
                expected[key].copy_(value.to(dtype=expected[key].dtype, device=expected[key].device))


__all__ = ["AdapterMixin", "ADAPTER_SAFE_FILE", "ADAPTER_PT_FILE", "available_adapters", "read_adapter_file"]
