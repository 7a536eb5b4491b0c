"""`edgerag search`, `ask`, `chat`: retrieval and grounded answers in the terminal."""

from __future__ import annotations

import shlex
import sys

from rich.markup import escape
from rich.table import Table

from ..errors import BadInputError
from ..filters import parse_where
from ..retrieve.search import MODES
from .common import add_collection_flag, add_json_flag, collection_name, console, print_json, settings_from


def _retrieval_flags(p) -> None:
    add_collection_flag(p)
    add_json_flag(p)
    p.add_argument("--mode", choices=MODES, default=None, help="retriever (default: settings' retrieve_mode)")
    p.add_argument("--top-k", dest="top_k", type=int, default=None, help="chunks to retrieve / give the model")
    p.add_argument("--rerank", action="store_true", help="rescore candidates with the embedding+overlap reranker")
    p.add_argument("--where", action="append", metavar="FILTER", default=None,
                   help="search only matching documents: path:GLOB, ext:pdf, modified>2026-01-01 (>=, <, <=, "
                        ":DATE, :A..B), page:N-M; repeat to combine (same key: OR; different keys: AND)")


def _generation_flags(p) -> None:
    _retrieval_flags(p)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--max-tokens", dest="max_tokens", type=int, default=None)
    p.add_argument("--generator", default=None, help="generator model name (default: the active one)")


def register(sub) -> None:
    p = sub.add_parser("search", help="ranked chunks for a query, with scores")
    p.add_argument("query")
    _retrieval_flags(p)
    p.set_defaults(func=search_cmd)

    p = sub.add_parser("ask", help="one answer, streamed, then the sources it cites")
    p.add_argument("question")
    _generation_flags(p)
    p.set_defaults(func=ask_cmd)

    p = sub.add_parser("chat", help="multi-turn chat over a collection (/new resets, /quit or Ctrl-D exits)")
    _generation_flags(p)
    p.set_defaults(func=chat_cmd)


def search_cmd(args) -> int:
    from ..retrieve import Retriever
    from ..retrieve.rerank import EmbeddingOverlapReranker
    from ..runtime import open_collection

    settings = settings_from(args)
    where = parse_where(args.where)  # before loading anything: a typo fails at once
    collection, embedder = open_collection(settings, collection_name(args, settings))
    with collection:
        reranker = EmbeddingOverlapReranker(embedder) if args.rerank else None
        retriever = Retriever.from_settings(collection, embedder, settings, reranker)
        hits = retriever.search(args.query, k=settings.top_k if args.top_k is None else args.top_k,
                                mode=args.mode or settings.retrieve_mode, where=where)
    if args.json:
        print_json([{"rank": i, "score": h.score, "dense": h.dense, "bm25": h.bm25, "path": h.source.path,
                     "page": h.source.page, "heading": h.source.heading, "text": h.text}
                    for i, h in enumerate(hits, 1)])
        return 0
    scope = f" in {where}" if where else ""
    table = Table(title=f"{len(hits)} results for {args.query!r}{escape(scope)}", show_lines=True)
    for col in ("#", "score", "source", "text"):
        table.add_column(col, overflow="fold")
    from ..generate.prompts import source_label

    for i, h in enumerate(hits, 1):
        table.add_row(str(i), f"{h.score:.3f}", source_label(h.source.path, h.source.page, h.source.heading),
                      escape(h.text[:300]))
    console.print(table)
    return 0


def _engine(args):
    from ..runtime import build_engine

    settings = settings_from(args)
    where = parse_where(args.where)  # before loading models: a typo fails at once
    engine = build_engine(settings, collection_name(args, settings), mode=args.mode, top_k=args.top_k,
                          generator_name=args.generator, rerank=args.rerank)
    engine.retriever.where = where  # every retrieval of this ask/chat searches only the matching documents
    return engine


def _print_answer(answer) -> None:
    """After the streamed text: the cited sources, flags for unsupported sentences, and timings."""
    if answer.interrupted:
        console.print("\n[yellow](stopped)[/]")
    console.print()
    if answer.dropped_turns:
        console.print(f"[dim]({answer.dropped_turns} oldest turn(s) left the model's context to make room)[/]")
    if answer.not_found:
        if answer.sources:
            console.print("[yellow]The model found no answer in the sources it was given.[/]")
        else:
            console.print(f"[yellow]Nothing relevant enough was found in your documents: "
                          f"{escape(answer.not_found_reason or 'no passage matches the question')}.[/]")
        return
    if answer.citations:
        console.print("[bold]Sources[/]")
        for c in answer.citations:
            why = f": {'; '.join(c.reasons)}" if c.reasons else ""
            what = "the answer's sentence it was matched to" if c.attributed else "the sentence citing it"
            mark = "" if c.supported else f" [red](does not support {what}{escape(why)})[/]"
            how = " [dim](matched by edgerag; the model gave no marker)[/]" if c.attributed else ""
            console.print(f"  [{c.number}] [cyan]{escape(c.source.label)}[/]{mark}{how}")
            console.print(f"      “{escape(c.passage)}”", style="dim")
    if answer.flagged:
        console.print("[red]Not supported by your documents:[/]")
        for s in answer.flagged:
            console.print(f"  - {escape(s.text)}")
            console.print(f"    [red]{s.status}[/]: {escape('; '.join(s.reasons) or 'no source states it')}")
    if not answer.grounded:
        console.print("[yellow]No sentence of this answer is supported by your documents: "
                      "treat it as not found.[/]")
    t = answer.timings
    if "first_token_s" in t:
        console.print(f"[dim]first token {t['first_token_s']:.2f}s · {t['completion_tokens']} tokens · "
                      f"{t['tokens_per_s']:.0f} tok/s[/]")


def _answer_json(answer) -> dict:
    from dataclasses import asdict

    data = asdict(answer)
    for sentence, checked in zip(data["sentences"], answer.sentences):
        sentence["status"] = checked.status  # supported | contradicted | unsupported | unchecked
    data["grounded"] = answer.grounded
    data["unsupported_sentences"] = answer.unsupported_sentences
    return data


def ask_cmd(args) -> int:
    if not args.question.strip():
        raise BadInputError("empty question")
    engine = _engine(args)
    stream = (lambda t: None) if args.json else (lambda t: (sys.stdout.write(t), sys.stdout.flush()))
    answer = engine.ask(args.question, on_token=stream)
    if args.json:
        print_json(_answer_json(answer))
    else:
        sys.stdout.write("\n")
        _print_answer(answer)
    return 130 if answer.interrupted else 0


def chat_cmd(args) -> int:
    from ..generate.chat import ChatSession

    session = ChatSession(_engine(args))
    if not args.json:
        scope = f" matching {session.engine.retriever.where}" if session.engine.retriever.where else ""
        console.print(f"[dim]chat over your documents{escape(scope)} · /new starts over · /where FILTER… changes "
                      "the filter (/where alone clears it) · /quit or Ctrl-D exits · Ctrl-C stops an answer[/]")
    while True:
        try:
            question = input("\n› " if not args.json else "")
        except (EOFError, KeyboardInterrupt):
            return 0
        question = question.strip()
        if not question:
            continue
        if question in ("/quit", "/exit"):
            return 0
        if question == "/new":
            session.reset()
            console.print("[dim]new conversation[/]")
            continue
        if question == "/where" or question.startswith("/where "):
            try:
                session.engine.retriever.where = parse_where(shlex.split(question[len("/where"):]))
            except (BadInputError, ValueError) as exc:  # a bad filter, or unbalanced quotes (shlex)
                console.print(f"[red]{escape(str(exc))}[/]")
                continue
            console.print(f"[dim]searching {escape(str(session.engine.retriever.where or 'every document'))}[/]")
            continue
        stream = (lambda t: None) if args.json else (lambda t: (sys.stdout.write(t), sys.stdout.flush()))
        try:
            answer = session.ask(question, on_token=stream)
        except BadInputError as exc:
            console.print(f"[red]{escape(str(exc))}[/]")
            continue
        if args.json:
            print_json(_answer_json(answer))
        else:
            sys.stdout.write("\n")
            _print_answer(answer)
