"""Chat: pick a collection, ask, watch the answer stream in, read the cited sources on the right.

All engine work (loading, asking) runs on one dedicated thread: the engine's SQLite connection may only be used
by the thread that opened it, and one thread also serialises turns so the llama.cpp KV cache is reused.
"""

from __future__ import annotations

import asyncio
import shlex
import threading
from concurrent.futures import ThreadPoolExecutor

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Input, Label, Select

from edgerag.errors import BadInputError
from edgerag.filters import Where, parse_where
from edgerag.generate.chat import ChatSession
from edgerag.store.collection import list_collections

from ..widgets.answer_view import AnswerView
from ..widgets.conversation import Conversation
from ..widgets.nav_bar import NavBar
from ..widgets.question_input import QuestionInput
from ..widgets.sources_panel import SourcesPanel
from .base import SectionScreen
from .chunk import ChunkScreen


class ChatScreen(SectionScreen):
    SECTION = "chat"
    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+n", "new_chat", "New chat"),
        Binding("ctrl+y", "copy", "Copy"),
        Binding("ctrl+o", "sources", "Sources"),
        Binding("ctrl+l", "pick_collection", "Collection"),
        Binding("ctrl+f", "filter", "Filter"),
    ]

    class Token(Message):
        def __init__(self, piece: str):
            super().__init__()
            self.piece = piece

    class Answered(Message):
        def __init__(self, answer):
            super().__init__()
            self.answer = answer  # None: stopped before the answer began

    def __init__(self):
        super().__init__()
        self.collection: str | None = None
        self.sessions: dict[str, ChatSession] = {}  # touched only on the engine thread
        self.stale: set[str] = set()  # collections whose engine must be rebuilt (keeping the conversation)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgerag-engine")
        self.stop_event = threading.Event()
        self.streaming: AnswerView | None = None

    def compose(self) -> ComposeResult:
        yield NavBar(self.SECTION)
        with Horizontal(id="chat-body"):
            with Vertical(id="chat-main"):
                with Horizontal(id="chat-top"):
                    yield Select([], prompt="collection", id="collection")
                    yield Label("", id="chat-status")
                yield Input(placeholder="filter (all documents): ext:pdf  path:reports/*  modified>2026-01-01",
                            id="chat-where", compact=True)
                yield Conversation(id="conversation")
                yield QuestionInput(placeholder="Ask about your documents (Enter)", id="question")
            yield SourcesPanel(id="sources")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(QuestionInput).focus()

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "stop":
            return self.streaming is not None  # the footer shows Stop only while an answer is being written
        return True

    def on_unmount(self) -> None:
        self.stop_event.set()
        self.executor.shutdown(wait=False, cancel_futures=True)

    # -- collections ---------------------------------------------------------------------------------------
    def reload(self) -> None:
        self.stale |= set(self.sessions)
        try:
            names = list_collections(self.app.settings.collections_dir)
        except OSError as exc:
            self.app.show_error(exc, "listing collections")
            names = []
        select = self.query_one("#collection", Select)
        with self.prevent(Select.Changed):
            select.set_options((n, n) for n in names)
        if not names:
            self.collection = None
            self.set_status("no collections yet: add a folder in Library (F3)")
            return
        preferred = self.app.settings.default_collection
        keep = self.collection if self.collection in names else preferred if preferred in names else names[0]
        with self.prevent(Select.Changed):
            select.value = keep
        if keep != self.collection:
            self.choose(keep)

    @on(Select.Changed, "#collection")
    def collection_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL and event.value != self.collection:
            self.choose(str(event.value))
            self.query_one(QuestionInput).focus()

    def choose(self, name: str) -> None:
        had_turns = self.collection is not None and bool(self.query(AnswerView))
        self.collection = name
        self.query_one(Conversation).clear()
        self.query_one(SourcesPanel).clear()
        if had_turns:
            self.notify(f"new chat on {name}", timeout=3)
        self.set_status(f"loading models for {name}…")
        self.preload(name)

    def set_status(self, text: str) -> None:
        self.query_one("#chat-status", Label).update(text)

    # -- engine thread -------------------------------------------------------------------------------------
    def _session(self, name: str) -> ChatSession:
        """On the engine thread: the chat for `name`, (re)built if needed."""
        session = self.sessions.get(name)
        if session is None or name in self.stale:
            fresh = ChatSession(self.app.engine_factory(self.app.settings, name))
            if session is not None:  # data changed under it: new engine, same conversation
                fresh.continue_from(session)
            self.sessions[name] = session = fresh
            self.stale.discard(name)
        return session

    def _ask_blocking(self, name: str, question: str, where: Where | None = None):
        def on_token(piece: str) -> None:
            if self.stop_event.is_set() or self.app.stopping.is_set():
                raise KeyboardInterrupt  # the engine stops generating and returns the partial answer
            self.post_message(self.Token(piece))

        session = self._session(name)
        retriever = getattr(session.engine, "retriever", None)
        if retriever is not None:
            retriever.where = where  # the filter box: retrieval searches only the matching documents
        if self.stop_event.is_set():
            return None
        try:
            return session.ask(question, on_token=on_token)
        except KeyboardInterrupt:  # stopped before generation began
            return None

    @work(group="engine", exit_on_error=False, description="loading the models")
    async def preload(self, name: str) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self._session, name)
        if name == self.collection and self.streaming is None:
            self.set_status(f"ready · {name}")

    @work(group="ask", exit_on_error=False, description="answering")
    async def ask(self, name: str, question: str, where: Where | None = None) -> None:
        answer = await asyncio.get_running_loop().run_in_executor(self.executor, self._ask_blocking, name, question,
                                                                  where)
        self.post_message(self.Answered(answer))

    # -- asking --------------------------------------------------------------------------------------------
    @on(Input.Submitted, "#question")
    def submitted(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if self.collection is None:
            self.notify("no collection to ask: add a folder in Library (F3) first", severity="warning")
            return
        if self.streaming is not None:
            self.notify("still answering: Esc stops it", severity="warning", timeout=3)
            return
        where = self.where()
        if where is False:
            return
        box = self.query_one(QuestionInput)
        box.remember(question)
        box.value = ""
        self.stop_event.clear()
        self.streaming = self.query_one(Conversation).ask(question)
        self.refresh_bindings()
        self.streaming.status("searching…")
        self.query_one(SourcesPanel).clear()
        self.set_status(f"answering · {self.collection} · Esc stops")
        self.ask(self.collection, question, where)

    # -- the filter box ------------------------------------------------------------------------------------
    def where(self) -> Where | None | bool:
        """The filter box parsed (None: empty), or False after telling the user what is wrong with it."""
        try:
            return parse_where(shlex.split(self.query_one("#chat-where", Input).value))
        except (BadInputError, ValueError) as exc:  # a bad expression, or unbalanced quotes
            self.notify(str(exc), title="filter", severity="error", timeout=8, markup=False)
            self.query_one("#chat-where", Input).focus()
            return False

    @on(Input.Submitted, "#chat-where")
    def where_submitted(self) -> None:
        where = self.where()
        if where is not False:
            self.notify(f"searching {where or 'every document'}", timeout=3, markup=False)
            self.query_one(QuestionInput).focus()

    def action_filter(self) -> None:
        self.query_one("#chat-where", Input).focus()

    def on_chat_screen_token(self, message: Token) -> None:
        if self.streaming is not None:
            self.streaming.append(message.piece)
            self.query_one(Conversation).scroll_end(animate=False)

    def on_chat_screen_answered(self, message: Answered) -> None:
        view, self.streaming = self.streaming, None
        self.refresh_bindings()
        self.set_status(f"ready · {self.collection}")
        if view is None:
            return
        if message.answer is None:
            view.stopped_early()
            return
        view.finish(message.answer)
        self.query_one(SourcesPanel).show(message.answer)
        self.query_one(Conversation).scroll_end(animate=False)

    def worker_failed(self, worker) -> None:
        if worker.group == "ask" and self.streaming is not None:
            self.streaming.update("(no answer: see the error message)")
            self.streaming = None
            self.refresh_bindings()
        self.set_status(f"not ready · {self.collection or 'no collection'}")

    # -- the rest ------------------------------------------------------------------------------------------
    def on_answer_view_selected(self, message: AnswerView.Selected) -> None:
        self.query_one(SourcesPanel).show(message.view.answer)

    def on_sources_panel_opened(self, message: SourcesPanel.Opened) -> None:
        self.app.push_screen(ChunkScreen(message.source, message.passage, message.supported))

    def action_stop(self) -> None:
        if self.streaming is not None:
            self.stop_event.set()
            self.set_status("stopping…")

    def action_new_chat(self) -> None:
        if self.streaming is not None:
            self.notify("still answering: Esc stops it first", severity="warning", timeout=3)
            return
        if self.collection is not None:
            self.executor.submit(lambda name=self.collection: self.sessions.get(name) and self.sessions[name].reset())
        self.query_one(Conversation).clear()
        self.query_one(SourcesPanel).clear()
        self.query_one(QuestionInput).focus()

    def action_copy(self) -> None:
        focused = self.focused if isinstance(self.focused, AnswerView) else self.query_one(Conversation).last_answer()
        if focused is None or not focused.text:
            self.notify("no answer to copy yet", severity="warning", timeout=3)
            return
        self.app.copy_to_clipboard(focused.text)
        self.notify("answer copied to the clipboard", timeout=3)

    def action_sources(self) -> None:
        self.query_one("#sources-list").focus()

    def action_pick_collection(self) -> None:
        select = self.query_one("#collection", Select)
        select.focus()
        select.action_show_overlay()
