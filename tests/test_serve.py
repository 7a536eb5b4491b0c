"""`edgerag serve` end to end: a real server on a free loopback port, the official `openai` client as the client.

The default tests run the real pipeline (real embedder, real collection, retrieval, citation checking) with a
fast deterministic generator in llama.cpp's place, because generation quality is not what they test; one slow
test answers with the bundled SmolLM2. Sockets may only connect to 127.0.0.1 (pytest-socket allow_hosts).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")

from edgerag.config import Settings  # noqa: E402
from edgerag.generate.citations import content_words  # noqa: E402
from edgerag.generate.llm import GenerationStats  # noqa: E402
from edgerag.generate.prompts import NOT_FOUND  # noqa: E402

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

SAMPLES = Path(__file__).resolve().parents[1] / "docs" / "samples"
WARRANTY_Q = "How long is the Aurora K3 warranty?"


class FakeGenerator:
    """Stands in for llama.cpp: answers a grounded prompt with the source sentence sharing most words with the
    question, cited [n]; a plain chat gets an echo. Streams word by word (`delay` seconds apart, `padding` extra
    words) and records how many streams ran at once and how many were stopped before their end."""

    n_ctx = 2048

    def __init__(self):
        self.delay, self.padding = 0.0, 0
        self.mutate = None  # answer → answer, to make the model say something its source does not
        self.active = self.max_active = self.stopped_early = 0
        self.prompts: list[list[dict]] = []
        self.stats = GenerationStats()
        self._lock = threading.Lock()

    def reset(self, delay: float = 0.0, padding: int = 0) -> None:
        self.delay, self.padding, self.mutate = delay, padding, None
        self.max_active = self.stopped_early = 0
        self.prompts.clear()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def answer(self, messages: list[dict]) -> str:
        content = messages[-1]["content"]
        sources, _, question = content.rpartition("\n\nQuestion:")
        if not sources:
            return f"echo: {content}"
        words, best, where = set(content_words(question)), 0, None
        for number, text in re.findall(r"\[(\d+)\] \([^)]*\) (.*?)(?=\n\n\[\d+\] \(|\Z)", sources, re.S):
            for sentence in re.split(r"(?<=\.)\s+", text):
                overlap = len(words & set(content_words(sentence)))
                if overlap > best:
                    best, where = overlap, (number, sentence.strip().rstrip("."))
        answer = NOT_FOUND if best < 2 else f"{where[1]} [{where[0]}]."
        return self.mutate(answer) if self.mutate else answer

    def stream_chat(self, messages, max_tokens=256, temperature=0.1, reuse_cache=True, stop=None):
        self.prompts.append(messages)
        words = (self.answer(messages) + " more" * self.padding).split(" ")[:max_tokens]
        self.stats = stats = GenerationStats()
        start, finished = time.perf_counter(), False
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            for i, word in enumerate(words):
                time.sleep(self.delay)
                if i == 0:
                    stats.first_token_s = time.perf_counter() - start
                stats.completion_tokens += 1
                yield word if i == 0 else " " + word
            finished = True
        finally:
            stats.total_s = time.perf_counter() - start
            with self._lock:
                self.active -= 1
                self.stopped_early += not finished


@pytest.fixture(scope="module")
def serve_settings(prepared_home, tmp_path_factory) -> Settings:
    """The prepared models (read only) and a fresh data dir holding one collection, `demo`, of docs/samples."""
    from edgerag.ingest.sync import sync
    from edgerag.runtime import open_collection

    settings = Settings(models_dir=prepared_home / "models", data_dir=tmp_path_factory.mktemp("serve-data"))
    collection, embedder = open_collection(settings, "demo", create=True)
    with collection:
        sync(collection, embedder, [SAMPLES], settings.chunk_tokens, settings.chunk_overlap)
    return settings


@pytest.fixture(scope="module")
def fake() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture(scope="module")
def server(serve_settings, fake):
    from edgerag.serve import Limits, serve_in_thread

    background = serve_in_thread(serve_settings, limits=Limits(max_body_bytes=100_000, max_tokens=512),
                                 load_generator=lambda _name: fake)
    yield background
    background.stop()


@pytest.fixture()
def client(server, fake):
    fake.reset()
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=30)


def model_ids(client) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    for m in client.models.list().data:
        kinds.setdefault(m.model_extra["kind"], []).append(m.id)
    return kinds


def test_models_lists_generators_embedders_and_collections(client, serve_settings):
    from edgerag.models import ModelStore

    kinds = model_ids(client)
    store = ModelStore(serve_settings.models_dir)
    assert kinds["rag"] == ["rag:demo"]
    assert store.active_name("generator") in kinds["generator"]
    assert store.active_name("embedder") in kinds["embedder"]


def test_rag_answer_with_citations(client, fake):
    response = client.chat.completions.create(model="rag:demo", messages=[{"role": "user", "content": WARRANTY_Q}])
    choice = response.choices[0]
    assert "two-year limited warranty" in choice.message.content and "[" in choice.message.content
    number = int(re.search(r"\[(\d+)\]", choice.message.content).group(1))
    citations = choice.model_extra["citations"]
    assert [c["number"] for c in citations] == [number]
    cited = citations[0]
    assert cited["path"].endswith("aurora-k3-manual.md") and cited["heading"].endswith("Warranty")
    assert "two-year limited warranty" in cited["passage"] and cited["supported"] is True
    extra = choice.model_extra["edgerag"]
    assert extra["not_found"] is False and extra["grounded"] is True and extra["flagged"] == []
    assert choice.finish_reason == "stop" and response.usage.completion_tokens > 0
    assert fake.prompts[-1][0]["role"] == "system"  # edgerag's grounded prompt, sources in the user turn
    assert "Sources:\n[1]" in fake.prompts[-1][-1]["content"]


def test_citation_that_does_not_support_its_sentence_is_marked(client, fake):
    fake.mutate = lambda answer: re.sub(r"^.*(\[\d+\]\.)$", r"Keeper Elsa Marsh sold the lighthouse in 1921 \1",
                                        answer)
    response = client.chat.completions.create(model="rag:demo", messages=[{"role": "user", "content": WARRANTY_Q}])
    choice = response.choices[0]
    assert choice.message.content.startswith("Keeper Elsa Marsh sold the lighthouse")
    cited = choice.model_extra["citations"][0]
    assert cited["path"].endswith("aurora-k3-manual.md") and cited["supported"] is False
    assert isinstance(cited["reasons"], list)
    flagged = choice.model_extra["edgerag"]["flagged"]
    assert [f["status"] for f in flagged] in (["unsupported"], ["contradicted"])
    assert flagged[0]["text"].startswith("Keeper Elsa Marsh") and flagged[0]["reasons"]


def test_unmarked_sentence_gets_the_marker_the_checker_found(client, fake):
    fake.mutate = lambda answer: re.sub(r" \[\d+\]\.$", ".", answer)  # the model forgot its marker
    whole = client.chat.completions.create(model="rag:demo", messages=[{"role": "user", "content": WARRANTY_Q}])
    cited = whole.choices[0].model_extra["citations"][0]
    assert cited["attributed"] is True and cited["supported"] is True
    assert whole.choices[0].message.content.endswith(f"workmanship [{cited['number']}].")
    stream = client.chat.completions.create(model="rag:demo", stream=True,
                                            messages=[{"role": "user", "content": WARRANTY_Q}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.endswith(f"workmanship. [{cited['number']}]")  # a stream can only append


def test_rag_streamed_answer_carries_citations_in_the_last_chunk(client):
    stream = client.chat.completions.create(model="rag:demo", stream=True, stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": WARRANTY_Q}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "two-year limited warranty" in text
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 3  # streamed, not one piece
    last = [c for c in chunks if c.choices][-1]
    assert last.choices[0].finish_reason == "stop"
    citations = last.choices[0].model_extra["citations"]
    assert citations and citations[0]["path"].endswith("aurora-k3-manual.md") and citations[0]["supported"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_rag_follow_up_resends_earlier_turn_with_its_sources(client, fake):
    first = client.chat.completions.create(model="rag:demo", messages=[{"role": "user", "content": WARRANTY_Q}])
    follow = client.chat.completions.create(model="rag:demo", messages=[
        {"role": "system", "content": "ignored: rag: uses edgerag's grounded prompt"},
        {"role": "user", "content": WARRANTY_Q},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "What does it not cover?"}])
    sent = fake.prompts[-1]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"].startswith("Sources:")  # the earlier turn exactly as the model saw it
    extra = follow.choices[0].model_extra["edgerag"]
    assert WARRANTY_Q in extra["query"]  # "it" borrowed the previous question for retrieval


def test_off_topic_question_is_not_found(client):
    response = client.chat.completions.create(model="rag:demo", messages=[
        {"role": "user", "content": "What is the best recipe for banana bread?"}])
    choice = response.choices[0]
    assert choice.message.content == NOT_FOUND
    assert choice.model_extra["citations"] == [] and choice.model_extra["edgerag"]["not_found"] is True


def test_plain_generator_chat_has_no_retrieval(client, serve_settings, fake):
    generator = model_ids(client)["generator"][0]
    response = client.chat.completions.create(model=generator, max_tokens=5, messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}])
    assert response.choices[0].message.content == "echo: hello there"
    assert fake.prompts[-1] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
    assert "citations" not in (response.choices[0].model_extra or {})


def test_embeddings_equal_edgerags_own(client, embedder):
    texts = ["How long is the warranty?", "The lighthouse keeper kept a log."]
    expected = embedder.embed(texts)
    for fmt in ("base64", "float"):  # the client asks for base64 unless told otherwise
        response = client.embeddings.create(model=embedder.name, input=texts, encoding_format=fmt)
        if fmt == "base64":  # the client returns base64 untouched when it was asked for explicitly
            got = np.stack([np.frombuffer(__import__("base64").b64decode(d.embedding), dtype="<f4")
                            for d in response.data])
        else:
            got = np.array([d.embedding for d in response.data], dtype=np.float32)
        np.testing.assert_allclose(got, expected, atol=1e-6)
    default = client.embeddings.create(model=embedder.name, input=texts[0])
    # alone, as edgerag embeds a query (the int8 embedder's dynamic quantization depends on the batch)
    np.testing.assert_allclose(default.data[0].embedding, embedder.embed([texts[0]])[0], atol=1e-6)
    assert default.usage.prompt_tokens == embedder.count_tokens(texts[0])


def test_two_concurrent_requests_queue_on_the_model(client, fake):
    fake.reset(delay=0.01, padding=30)
    generator = model_ids(client)["generator"][0]
    results: dict = {}

    def rag():
        stream = client.chat.completions.create(model="rag:demo", stream=True,
                                                messages=[{"role": "user", "content": WARRANTY_Q}])
        results["rag"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    def plain():
        results["plain"] = client.chat.completions.create(
            model=generator, messages=[{"role": "user", "content": "hi"}]).choices[0].message.content

    threads = [threading.Thread(target=rag), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["rag"].startswith("The Aurora K3 carries a two-year limited warranty")
    assert results["plain"] == "echo: hi" + " more" * 30
    assert len(fake.prompts) == 2 and fake.max_active == 1  # one llama.cpp state, never shared


def test_disconnect_mid_stream_stops_generation(client, fake):
    fake.reset(delay=0.05, padding=400)  # 20 s if nobody stops it
    started = time.perf_counter()
    with client.chat.completions.create(model="rag:demo", stream=True,
                                        messages=[{"role": "user", "content": WARRANTY_Q}]) as stream:
        got = [c for _, c in zip(range(4), stream)]
    assert len(got) == 4
    deadline = time.monotonic() + 10
    while fake.stopped_early == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.stopped_early == 1 and fake.active == 0
    assert time.perf_counter() - started < 10
    fake.reset()
    after = client.chat.completions.create(model="rag:demo", messages=[{"role": "user", "content": WARRANTY_Q}])
    assert "two-year" in after.choices[0].message.content  # the model is free again


def test_disconnect_while_waiting_for_a_whole_answer_stops_generation(client, fake):
    fake.reset(delay=0.05, padding=400)
    impatient = client.with_options(timeout=1.0)
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model="rag:demo", messages=[{"role": "user", "content": WARRANTY_Q}])
    deadline = time.monotonic() + 10
    while fake.stopped_early == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.stopped_early == 1 and fake.active == 0


@pytest.mark.parametrize("kwargs, status, words", [
    ({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}, 404, "does not exist"),
    ({"model": "rag:nothing-here", "messages": [{"role": "user", "content": "hi"}]}, 404, "does not exist"),
    ({"model": "rag:demo", "messages": []}, 400, "messages is empty"),
    ({"model": "rag:demo", "messages": [{"role": "assistant", "content": "hi"}]}, 400, "user message"),
    ({"model": "rag:demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100_000}, 400,
     "max_tokens"),
    ({"model": "rag:demo", "messages": [{"role": "user", "content": "x " * 60_000}]}, 413, "larger than"),
    ({"model": "rag:demo", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages.0.role"),
])
def test_bad_requests_get_openai_errors(client, kwargs, status, words):
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**kwargs)
    assert caught.value.status_code == status
    assert words in caught.value.message
    assert caught.value.body["message"]  # OpenAI's error object: {"error": {"message", "type", ...}}


def test_bad_embedding_and_malformed_json(client, server):
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="rag:demo", input="hi")
    import json
    import urllib.error
    import urllib.request

    raw = urllib.request.Request(f"{server.url}/chat/completions", data=b"{not json", method="POST",
                                 headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(raw, timeout=10)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["error"]["message"] == "the request body is not valid JSON"


def test_chunked_body_over_the_limit_is_refused(server):
    """No Content-Length to check up front: the body is counted as it arrives."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    body = iter([b'{"model": "rag:demo", "messages": ["'] + [b"x" * 10_000] * 20)  # 200 KB, limit 100 KB
    conn.request("POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"},
                 encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413 and b"larger than" in response.read()
    conn.close()


def test_a_full_queue_answers_429():
    from edgerag.serve.protocol import ApiError
    from edgerag.serve.registry import ModelWorker

    worker, release = ModelWorker("m", max_queue=2), threading.Event()
    running = [worker.submit(release.wait), worker.submit(lambda: "second")]
    with pytest.raises(ApiError) as caught:
        worker.submit(lambda: "third")
    assert caught.value.status == 429 and "retry" in caught.value.message
    release.set()
    assert running[1].result(5) == "second"
    assert worker.submit(lambda: "later").result(5) == "later"  # room again once the queue drained
    worker.shutdown()


def test_api_key_and_bind_safety(serve_settings, fake):
    from edgerag.errors import BadInputError
    from edgerag.serve import check_bind, serve_in_thread

    with pytest.raises(BadInputError, match="--api-key"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "secret")
    check_bind("127.0.0.1", None)
    background = serve_in_thread(serve_settings, api_key="secret", load_generator=lambda _name: fake)
    try:
        wrong = openai.OpenAI(base_url=background.url, api_key="guess", max_retries=0, timeout=10)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        right = openai.OpenAI(base_url=background.url, api_key="secret", max_retries=0, timeout=10)
        assert "rag:demo" in [m.id for m in right.models.list().data]
    finally:
        background.stop()


@pytest.mark.slow
def test_rag_answer_from_the_bundled_model(serve_settings):
    """SmolLM2-135M through the server: what it says varies, so check the contract, not the wording: the right
    sources were retrieved, every [n] in the text and every citation points at one of them, and the checker's
    verdicts came back (the same Answer `edgerag ask` would print)."""
    from edgerag.serve import serve_in_thread

    background = serve_in_thread(serve_settings)  # the real llama.cpp generator
    try:
        client = openai.OpenAI(base_url=background.url, api_key="unused", max_retries=0, timeout=120)
        question = "How long does the Aurora K3 warranty last, and what does it not cover?"
        stream = client.chat.completions.create(model="rag:demo", stream=True,
                                                messages=[{"role": "user", "content": question}])
        chunks = [c for c in stream if c.choices]
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        whole = client.chat.completions.create(model="rag:demo", messages=[{"role": "user", "content": question}])
        for content, extra in ((text, chunks[-1].choices[0].model_extra),
                               (whole.choices[0].message.content, whole.choices[0].model_extra)):
            verdicts = extra["edgerag"]
            assert content.strip() and not verdicts["interrupted"]
            sources = {s["number"]: s["path"] for s in verdicts["sources"]}
            assert any(p.endswith("aurora-k3-manual.md") for p in sources.values())
            for c in extra["citations"]:
                assert sources[c["number"]] == c["path"] and c["passage"]
            assert {int(n) for n in re.findall(r"\[(\d+)\]", content)} <= set(sources)
            assert verdicts["not_found"] or extra["citations"] or verdicts["flagged"]
    finally:
        background.stop()


def test_tui_models_screen_starts_and_stops_the_server(serve_settings, monkeypatch):
    """The Models screen's `s` runs `edgerag serve` as a child process, shows its URL, and stops it."""
    import asyncio

    from test_tui_support import FakeEngine, wait_for
    from textual.widgets import Label
    from tui.app import create_app
    from tui.screens.models import ModelsScreen

    monkeypatch.setattr(ModelsScreen, "SERVE_PORT", 0)  # a free port, not the user's 8000

    async def scenario():
        app = create_app(serve_settings, engine_factory=lambda *_: FakeEngine())
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.press("f4")
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            await pilot.press("s")
            await wait_for(pilot, lambda: screen.serve_url is not None, timeout=60, what="the server's URL")
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", screen.serve_url)
            assert screen.serve_url in str(screen.query_one("#serve-status", Label).render())
            client = openai.OpenAI(base_url=screen.serve_url, api_key="unused", max_retries=0, timeout=30)
            assert "rag:demo" in [m.id for m in client.models.list().data]
            process = screen.serve_process
            await pilot.press("s")
            await wait_for(pilot, lambda: process.returncode is not None and not screen.serve_busy, timeout=30,
                           what="the server to stop")
            assert "off" in str(screen.query_one("#serve-status", Label).render())

    asyncio.run(scenario())


def test_rag_where_limits_retrieval_to_matching_documents(client, fake):
    """`where` (edgerag's request field; the CLI's --where expressions): only matching documents are searched."""
    def ask(model="rag:demo", **extra):
        return client.chat.completions.create(model=model, messages=[{"role": "user", "content": WARRANTY_Q}],
                                              extra_body=extra)

    cited = ask(where="ext:md").choices[0].model_extra["citations"]
    assert cited and all(c["path"].endswith("aurora-k3-manual.md") for c in cited)
    asked = len(fake.prompts)
    other = ask(where=["ext:html", "ext:txt"]).choices[0]  # the manual is filtered out
    assert not any(c["path"].endswith(".md") for c in other.model_extra["citations"])
    assert len(fake.prompts) == asked or "aurora-k3-manual.md" not in fake.prompts[-1][-1]["content"]
    for kwargs, words in [({"where": "page:0"}, "bad filter 'page:0'"),
                          ({"where": "ext:pdf"}, "matches the filter ext:pdf"),
                          ({"where": "ext:md", "model": model_ids(client)["generator"][0]}, "where filters")]:
        with pytest.raises(openai.BadRequestError) as caught:
            ask(**kwargs)
        assert words in caught.value.message
