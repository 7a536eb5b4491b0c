"""What differs between the model architectures finetuning and export handle, in one table.

Keys are GGUF architectures (`general.architecture`). Mistral 7B, TinyLlama, SmolLM and Llama 3 are all written
as `llama` by llama.cpp's converter; they differ in their tokenizer, which base.py checks against llama.cpp.

- `fused`: HF module names that exist only fused in this architecture (Phi-3 keeps q, k and v in one `qkv_proj`,
  gate and up in one `gate_up_proj`), so a LoRA asked for `q_proj` goes on `qkv_proj`. The GGUF tensors are fused
  the same way (attn_qkv, ffn_up), so the adapter maps one-to-one.
- `permute_qk`: llama.cpp's converter stores q/k rows of this architecture in a rotary-interleaved order and
  transformers un-permutes them on load, so export permutes the LoRA deltas of q/k the same way. Only `llama`
  (the others use llama.cpp's NeoX rope order, which is HF's).
- `hf_type`: the transformers `model_type` a GGUF of this architecture loads as.
Verified on tiny random-weight models of each (tests/test_architectures.py): transformers and llama.cpp give the
same logits for the base, and PEFT = merged GGUF = base + adapter GGUF after training.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Arch:
    hf_type: str
    permute_qk: bool = False
    fused: dict[str, str] = field(default_factory=dict)

    def lora_targets(self, modules) -> list[str]:
        """The HF module names LoRA goes on for the requested (llama-style) projection names."""
        return sorted({self.fused.get(m, m) for m in modules})


_PHI3_FUSED = {"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj", "gate_proj": "gate_up_proj",
               "up_proj": "gate_up_proj"}

ARCHS = {
    "llama": Arch("llama", permute_qk=True),
    "qwen2": Arch("qwen2"),
    "qwen3": Arch("qwen3"),
    "gemma2": Arch("gemma2"),
    "gemma3": Arch("gemma3_text"),
    "phi3": Arch("phi3", fused=_PHI3_FUSED),
}


def arch_for_hf_type(model_type: str) -> Arch | None:
    return next((a for a in ARCHS.values() if a.hf_type == model_type), None)
