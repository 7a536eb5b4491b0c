"""GPU check (issue 15): `finetune train` on an NVIDIA GPU vs the CPU (tokens/s) and the generation step of `ask`
with gpu_layers=-1 vs 0, on a machine that has CUDA torch but maybe no package registry, no bitsandbytes and no
llama-cpp-python. What it lacks is installed from files carried with the working tree (--wheels, default .whl):
wheels (gguf, snowballstemmer, bitsandbytes if carried) and the llama-cpp-python sdist, built there with
-DGGML_CUDA=on for the GPU found. Everything goes into a private folder (--site) put first on sys.path; nothing
of the machine's own Python is changed. Works with the transformers found there (5.x) as with ours (4.57).

The model: the store's generator named by --model when the machine has a prepared store (EDGERAG_HOME), else a
random-weight model with SmolLM2-135M's shape (30 layers, 576 wide, 49,152-token vocabulary), written both as an
HF folder (training) and as an F16 GGUF (llama.cpp): speed does not depend on the weights' values, and neither
the bundled GGUF (98 MB) nor the llama-cpp-python sdist fit the 64 MiB a device call carries unless slimmed.

    # here (with pip): the files to carry, the sdist slimmed (no .git, vocab test files, docs)
    .venv/bin/python -P bench/gpu.py --collect .whl
    # there (python3 holds CUDA torch): results as JSON + Markdown in --out
    python3 -P bench/gpu.py --wheels .whl --out "$OUT"

Each measurement runs in its own child process (CUDA_VISIBLE_DEVICES="" for the CPU runs), so a failure is
recorded and the others still run. Exit codes: 0 = measured, or no CUDA GPU found (said on stdout; the JSON's
"status" is "no-gpu"); 1 = a measurement failed (the JSON names it); 2 = bad arguments.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NO_GPU, FAILED, BAD_ARGS = 0, 1, 2
# import name -> file pattern in --wheels (the sdist is handled apart: it is built, not unpacked)
WHEELS = {"gguf": "gguf-*.whl", "snowballstemmer": "snowballstemmer-*.whl", "Stemmer": "[Pp]y[Ss]temmer-*.whl",
          "platformdirs": "platformdirs-*.whl", "diskcache": "diskcache-*.whl",  # llama_cpp imports it
          "bitsandbytes": "bitsandbytes-*.whl"}
COLLECT = ["gguf==0.19.0", "snowballstemmer==3.1.1", "PyStemmer==3.1.0", "platformdirs==4.14.8", "diskcache==5.6.3"]
SMOLLM2_SHAPE = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                     num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192)
ROPE_THETA, RMS_EPS = 100000.0, 1e-5  # kept here: transformers 5 moved rope_theta into config.rope_parameters


def say(message: str) -> None:
    print(message, flush=True)


# -- files from here to there ---------------------------------------------------------------------------------
def collect(folder: Path) -> None:
    """Wheels for CPython 3.12 on x86-64 Linux plus the llama-cpp-python sdist without what a build never reads."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                    "3.12", "--implementation", "cp", "--platform", "manylinux_2_17_x86_64", "--platform",
                    "manylinux2014_x86_64", "-d", str(folder), *COLLECT], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        # --no-binary for this one package only (":all:" would also build its build tools from source)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python",
                        "-d", tmp, "llama-cpp-python==0.3.36"], check=True)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        slim_sdist(sdist, folder / sdist.name)
    say(f"{folder}: {sum(p.stat().st_size for p in folder.iterdir()) / 2**20:.1f} MiB to carry")


def _unneeded(name: str) -> bool:
    parts = name.split("/")
    return ".git" in parts or "/vendor/llama.cpp/docs/" in name or \
        ("/vendor/llama.cpp/models/" in name and name.endswith((".gguf", ".inp", ".out")))


def slim_sdist(source: Path, target: Path) -> None:
    with tarfile.open(source) as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            if not _unneeded(member.name):
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)


def find(folder: Path, pattern: str) -> Path | None:
    hits = sorted(glob.glob(str(folder / pattern)))
    return Path(hits[-1]) if hits else None


def install(wheels: Path, site: Path, cuda_arch: str, build_timeout: int) -> dict:
    """What was missing, and where it came from. Nothing is fetched: only files under `wheels` are used."""
    site.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")])
    report = {}
    pip = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile", "--target", str(site)]
    for module, pattern in WHEELS.items():
        if importlib.util.find_spec(module):
            report[module] = "present"
            continue
        wheel = find(wheels, pattern)
        if wheel is None:
            report[module] = "missing (no wheel carried)"
            continue
        done = subprocess.run([*pip, str(wheel)], capture_output=True, text=True)
        report[module] = f"installed from {wheel.name}" if done.returncode == 0 else f"failed: {done.stderr[-300:]}"
    importlib.invalidate_caches()
    report["llama_cpp"] = _install_llama(wheels, pip, cuda_arch, build_timeout)
    importlib.invalidate_caches()
    return report


def _llama_gpu_build() -> bool | None:
    """True/False: llama-cpp-python's build can/cannot offload; None: not importable."""
    probe = subprocess.run([sys.executable, "-c", "import llama_cpp; print(llama_cpp.llama_supports_gpu_offload())"],
                           capture_output=True, text=True)
    return None if probe.returncode else probe.stdout.strip() == "True"


def _install_llama(wheels: Path, pip: list[str], cuda_arch: str, timeout: int) -> str:
    if _llama_gpu_build():
        return "present (GPU build)"
    sdist = find(wheels, "llama_cpp_python-*.tar.gz")
    if sdist is None:
        return "no CUDA build: no llama-cpp-python sdist carried" + ("" if _llama_gpu_build() is None else
                                                                        " (CPU build present)")
    env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 8),
           # GGML_NATIVE off: the CPU side must not pick instructions the VM advertises but cannot run (AMX)
           "CMAKE_ARGS": f"-DGGML_CUDA=on -DGGML_NATIVE=OFF -DCMAKE_CUDA_ARCHITECTURES={cuda_arch} "
                         "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"}
    started = time.perf_counter()
    try:
        done = subprocess.run([*pip, "--no-build-isolation", "--upgrade", str(sdist)], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"build of {sdist.name} passed its {timeout} s limit"
    took = time.perf_counter() - started
    if done.returncode:
        return f"build of {sdist.name} failed after {took:.0f} s: {done.stderr[-600:]}"
    return f"built from {sdist.name} with CUDA (sm_{cuda_arch}) in {took:.0f} s" + \
        ("" if _llama_gpu_build() else "; but it reports no GPU offload")


# -- the model -------------------------------------------------------------------------------------------------
def synthetic_model(home: Path) -> tuple[str, str]:
    """(HF store name, GGUF store name): one random-weight SmolLM2-135M-shaped llama, in both formats."""
    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from edgerag.models import ModelStore
    from edgerag.models.importing import import_model

    store = ModelStore(home / "models")
    if store.exists("synthetic-135m-hf") and store.exists("synthetic-135m-gguf"):
        return "synthetic-135m-hf", "synthetic-135m-gguf"
    work = home / "synthetic"
    shutil.rmtree(work, ignore_errors=True)
    (work / "hf").mkdir(parents=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator([_passage(i) for i in range(200)], trainers.BpeTrainer(
        vocab_size=2000, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>",
                                                eos_token="<|im_end|>", pad_token="<|im_end|>")
    fast.chat_template = CHATML
    fast.save_pretrained(str(work / "hf"))
    config = transformers.LlamaConfig(**SMOLLM2_SHAPE, rms_norm_eps=RMS_EPS, rope_theta=ROPE_THETA, bos_token_id=1,
                                      eos_token_id=2, pad_token_id=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(str(work / "hf"))  # safetensors (the default of 4.57, the only format of 5.x)
    _write_gguf(model, tok, work / "synthetic-135m.gguf")
    import_model(store, work / "hf", name="synthetic-135m-hf")
    import_model(store, work / "synthetic-135m.gguf", name="synthetic-135m-gguf")
    shutil.rmtree(work)
    return "synthetic-135m-hf", "synthetic-135m-gguf"


CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
WORDS = ("battery warranty device weighs colour slate grey months hours screen charger port cable firmware update "
         "reset router factory settings signal antenna range metres storage memory processor cores speed").split()


def _passage(i: int) -> str:
    return " ".join(f"The {WORDS[(i * 7 + k) % len(WORDS)]} is {i * 13 + k} {WORDS[(i + k) % len(WORDS)]}."
                    for k in range(12))


def _write_gguf(model, tok, path: Path) -> None:
    import gguf
    import numpy as np

    from edgerag.finetune.export import finish_gguf, permute_rows

    c = model.config
    vocab = json.loads(tok.to_str())["model"]
    tokens = [t for t, _ in sorted(vocab["vocab"].items(), key=lambda kv: kv[1])]
    tokens += [f"<filler_{i}>" for i in range(c.vocab_size - len(tokens))]  # rows the small vocabulary leaves
    merges = [m if isinstance(m, str) else " ".join(m) for m in vocab["merges"]]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.name", "synthetic-135m")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    head_dim = c.hidden_size // c.num_attention_heads
    for key, value in {"context_length": 8192, "embedding_length": c.hidden_size, "block_count": c.num_hidden_layers,
                       "feed_forward_length": c.intermediate_size, "attention.head_count": c.num_attention_heads,
                       "attention.head_count_kv": c.num_key_value_heads, "rope.dimension_count": head_dim,
                       "vocab_size": c.vocab_size}.items():
        writer.add_uint32(f"llama.{key}", value)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", RMS_EPS)
    writer.add_float32("llama.rope.freq_base", ROPE_THETA)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if i < 3 else gguf.TokenType.NORMAL for i in range(len(tokens))])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, c.num_hidden_layers)
    for key, tensor in model.state_dict().items():
        if key == "lm_head.weight":
            continue  # tied
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        data = tensor.float().numpy()
        if name.endswith(("attn_q.weight", "attn_k.weight")):
            data = permute_rows(data, c.num_attention_heads if "attn_q" in name else c.num_key_value_heads)
        writer.add_tensor(name, np.ascontiguousarray(data, dtype=np.float16 if data.ndim > 1 else np.float32))
    finish_gguf(writer)


def training_data(path: Path, n: int = 64) -> Path:
    """Runtime-format RAG chats of ~700 tokens: five passages as sources, a question, a cited answer."""
    from edgerag.generate.prompts import SYSTEM_PROMPT

    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            sources = "\n\n".join(f"[{k + 1}] (manual.txt) {_passage(i * 5 + k)}" for k in range(5))
            answer = _passage(i * 5).split(".")[0] + ". [1]"
            fh.write(json.dumps({"messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: what is the {WORDS[i % len(WORDS)]}?"},
                {"role": "assistant", "content": answer}]}) + "\n")
    return path


# -- measurements, each in a child process ----------------------------------------------------------------------
def worker_train(spec: dict) -> dict:
    import torch

    from edgerag.config import load_settings
    from edgerag.finetune.train import TrainConfig, train

    cuda = torch.cuda.is_available()
    config = TrainConfig(base=spec["base"], train_file=spec["data"], out_dir=tempfile.mkdtemp(prefix="run-"),
                         bits=spec["bits"], max_steps=spec["steps"], batch_size=spec["batch_size"],
                         max_seq_len=spec["max_seq_len"], save_steps=10**6, warmup_steps=0)
    result = train(config, load_settings())
    shutil.rmtree(config.out_dir, ignore_errors=True)
    return {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "bits": config.bits,
            "batch_size": config.batch_size, "max_seq_len": config.max_seq_len, "steps": result.steps,
            "seconds": round(result.seconds, 1), "tokens_per_s": round(result.tokens_per_s, 1),
            "final_loss": round(result.final_loss, 4),
            "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None}


def worker_ask(spec: dict) -> dict:
    from types import SimpleNamespace

    from edgerag.config import load_settings
    from edgerag.generate.llm import Generator
    from edgerag.generate.prompts import messages_for
    from edgerag.models import ModelStore

    path = ModelStore(load_settings().models_dir).main_path(spec["model"])
    generator = Generator(path, n_ctx=4096, threads=os.cpu_count() or 1, gpu_layers=spec["gpu_layers"])
    sources = [SimpleNamespace(text=_passage(i), path="manual.txt", page=None, heading=None) for i in range(12)]
    generator.chat(messages_for("warm up", sources[:2]), max_tokens=8, reuse_cache=False)
    prompt, prompt_s, made, made_s = 0, 0.0, 0, 0.0
    for q in range(spec["questions"]):
        # other sources each time, as ask retrieves them: the whole prompt is evaluated, no KV reuse
        generator.chat(messages_for(f"what is the {WORDS[q]}?", sources[q:q + 6]), max_tokens=96, reuse_cache=False)
        stats = generator.stats
        prompt, prompt_s = prompt + stats.prompt_tokens, prompt_s + stats.first_token_s
        made, made_s = made + max(0, stats.completion_tokens - 1), made_s + stats.total_s - stats.first_token_s
    import llama_cpp

    return {"gpu_layers": spec["gpu_layers"], "gpu_offload_build": bool(llama_cpp.llama_supports_gpu_offload()),
            "questions": spec["questions"], "prompt_tokens": prompt,
            "prompt_tokens_per_s": round(prompt / max(prompt_s, 1e-9), 1),
            "generated_tokens": made, "generation_tokens_per_s": round(made / max(made_s, 1e-9), 1),
            "seconds_per_answer": round((prompt_s + made_s) / spec["questions"], 3)}


def run_worker(spec: dict, timeout: int) -> dict:
    env = dict(os.environ)
    if spec.get("cpu"):
        env["CUDA_VISIBLE_DEVICES"] = ""  # torch then sees no GPU: train() takes its CPU path
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-P", str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"spec": spec, "error": f"passed its {timeout} s limit"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:  # a native crash (a signal) prints nothing: the exit code says which
        return {"spec": spec, "error": f"exit code {done.returncode}\n{(done.stderr or done.stdout)[-1500:]}".strip()}
    return {"spec": spec, "wall_s": round(time.perf_counter() - started, 1), **json.loads(lines[-1])}


# -- results -------------------------------------------------------------------------------------------------------
def markdown(result: dict) -> str:
    out = [f"# GPU check ({result['started']})", "", f"status: {result['status']}", ""]
    for key in ("gpu", "torch", "transformers", "python"):
        if result.get(key):
            out.append(f"- {key}: {result[key]}")
    for module, how in result.get("install", {}).items():
        out.append(f"- {module}: {how}")
    train = [r for r in result.get("runs", []) if r["spec"]["kind"] == "train"]
    cpu = next((r for r in train if r["spec"].get("cpu") and "error" not in r), None)
    if train:
        out += ["", "| finetune train | bits | batch × seq | steps | tokens/s | vs CPU | peak GPU MiB |",
                "|---|---|---|---|---|---|---|"]
        for r in train:
            if "error" in r:
                out.append(f"| {r['spec']['label']} | failed: {r['error'].splitlines()[-1][:120]} | | | | | |")
                continue
            ratio = f"{r['tokens_per_s'] / cpu['tokens_per_s']:.1f}×" if cpu and cpu["tokens_per_s"] else ""
            out.append(f"| {r['spec']['label']} | {r['bits']} | {r['batch_size']} × {r['max_seq_len']} | {r['steps']} | "
                       f"{r['tokens_per_s']} | {ratio} | {r['peak_gpu_mib'] or ''} |")
    ask = [r for r in result.get("runs", []) if r["spec"]["kind"] == "ask"]
    if ask:
        out += ["", "| ask (generation step) | gpu_layers | prompt tokens/s | generated tokens/s | s per answer |",
                "|---|---|---|---|---|"]
        for r in ask:
            if "error" in r:
                out.append(f"| {r['spec']['label']} | failed: {r['error'].splitlines()[-1][:120]} | | | |")
            else:
                out.append(f"| {r['spec']['label']} | {r['gpu_layers']} | {r['prompt_tokens_per_s']} | "
                           f"{r['generation_tokens_per_s']} | {r['seconds_per_answer']} |")
    return "\n".join(out) + "\n"


def write_results(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-check.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "gpu-check.md").write_text(markdown(result), encoding="utf-8")
    say(f"results: {out / 'gpu-check.json'}, {out / 'gpu-check.md'}")


def detect() -> dict:
    """torch's view of the machine; {"status": "no-gpu", ...} where there is no CUDA torch or no GPU."""
    import platform

    info = {"python": platform.python_version()}
    try:
        import torch
    except ImportError:
        return {**info, "status": "no-gpu", "reason": "torch is not installed"}
    info["torch"] = torch.__version__
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return {**info, "status": "no-gpu", "reason": f"torch {torch.__version__} ({build}) sees no CUDA GPU"}
    props = torch.cuda.get_device_properties(0)
    info.update(status="measuring", gpu=f"{props.name}, {props.total_memory / 2**30:.0f} GiB",
                cuda_arch=f"{props.major}{props.minor}")
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", type=Path, default=REPO / ".whl", help="carried wheels and sdist (default .whl)")
    parser.add_argument("--site", type=Path, default=Path(tempfile.gettempdir()) / "edgerag-gpu-site",
                        help="where missing packages are installed (put first on sys.path)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or REPO / "gpu-check"))
    parser.add_argument("--model", help="a generator in the store of EDGERAG_HOME (default: a random-weight "
                                        "SmolLM2-135M-shaped model made here)")
    parser.add_argument("--gpu-steps", type=int, default=30, help="training steps per GPU run (default 30)")
    parser.add_argument("--cpu-steps", type=int, default=3, help="training steps of the CPU run (default 3)")
    parser.add_argument("--questions", type=int, default=5, help="answers generated per ask run (default 5)")
    parser.add_argument("--build-timeout", type=int, default=420, help="seconds for building llama-cpp-python")
    parser.add_argument("--step-timeout", type=int, default=240, help="seconds for each measurement")
    parser.add_argument("--collect", type=Path, metavar="DIR", help="here, with pip: save the files to carry in DIR")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("gpu_steps", "cpu_steps", "questions", "build_timeout", "step_timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.worker:
        sys.path.insert(0, str(args.site))
        spec = json.loads(args.worker)
        print(json.dumps((worker_train if spec["kind"] == "train" else worker_ask)(spec)), flush=True)
        return 0
    if args.collect:
        collect(args.collect)
        return 0
    result = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), **detect()}
    if result["status"] == "no-gpu":
        say(f"no CUDA GPU found: {result['reason']}. Nothing was measured (exit code {NO_GPU}).")
        write_results(result, args.out)
        return NO_GPU
    say(f"GPU: {result['gpu']}; installing what is missing from {args.wheels}")
    result["install"] = install(args.wheels, args.site, result["cuda_arch"], args.build_timeout)
    importlib.import_module("edgerag")  # after the install: its offline switches before its dependencies load

    if args.model:
        train_base = ask_model = args.model
    else:
        home = Path(tempfile.mkdtemp(prefix="edgerag-gpu-"))
        os.environ["EDGERAG_HOME"] = str(home)
        say("making a random-weight SmolLM2-135M-shaped model (HF folder + F16 GGUF)")
        train_base, ask_model = synthetic_model(home)
    data = str(training_data(Path(tempfile.mkdtemp(prefix="edgerag-gpu-data-")) / "train.jsonl"))
    train = dict(kind="train", base=train_base, data=data, max_seq_len=1536)
    specs = [dict(train, label="GPU bf16 LoRA, batch 4", bits=16, steps=args.gpu_steps, batch_size=4),
             dict(train, label="GPU bf16 LoRA, sized batch", bits=16, steps=args.gpu_steps, batch_size=0, max_seq_len=0)]
    if importlib.util.find_spec("bitsandbytes"):
        specs.append(dict(train, label="GPU NF4 QLoRA, batch 4", bits=4, steps=args.gpu_steps, batch_size=4))
    specs += [dict(train, label="CPU fp32 LoRA, batch 4", bits=32, steps=args.cpu_steps, batch_size=4, cpu=True),
              dict(kind="ask", label="all layers on the GPU", model=ask_model, gpu_layers=-1, questions=args.questions),
              dict(kind="ask", label="CPU only", model=ask_model, gpu_layers=0, questions=args.questions)]
    result["runs"] = []
    for spec in specs:
        say(f"measuring: {spec['kind']} {spec['label']}")
        result["runs"].append(run_worker(spec, args.step_timeout))
        write_results(result, args.out)  # what is done so far survives a kill
    failed = [r["spec"]["label"] for r in result["runs"] if "error" in r]
    result["status"] = f"failed: {', '.join(failed)}" if failed else "measured"
    write_results(result, args.out)
    say(markdown(result))
    return FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())
