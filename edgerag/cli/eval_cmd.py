"""`edgerag eval retrieval` and `edgerag eval qa`: benchmark runs with a run directory, report and plots."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from ..retrieve.search import MODES
from .common import add_json_flag, console, err_console, print_json, progress_bars, settings_from

GENERATOR_HELP = ("[LABEL=]MODEL[+ADAPTER]: a store model name or a GGUF path, optionally + a LoRA adapter "
                  "(GGUF path or gguf-lora store name); repeat to compare (the first is the base). "
                  "Default: the active generator")


def _common_flags(p) -> None:
    add_json_flag(p)
    p.add_argument("--limit", type=int, default=None, help="evaluate a random N questions/queries (see --seed)")
    p.add_argument("--seed", type=int, default=None, help="seed for --limit's sample, the bootstrap and sampling")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% CIs")
    p.add_argument("--name", default=None, help="run name (the run dir is runs/<timestamp>-<name>)")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="continue an interrupted run: same command, plus this; done questions are skipped")


def register(sub) -> None:
    p = sub.add_parser("eval", help="benchmark retrieval or answers; writes a run dir with a report and plots")
    eval_sub = p.add_subparsers(dest="eval_command", metavar="WHAT")
    p.set_defaults(func=lambda args: p.print_help() or 2)

    r = eval_sub.add_parser("retrieval", help="nDCG@10, Recall@10/100, MRR@10 on a BEIR-format corpus")
    r.add_argument("--beir", required=True, type=Path, metavar="DIR_OR_ZIP",
                   help="BEIR dataset: folder or zip with corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    r.add_argument("--split", default="test", help="qrels split (default: test)")
    r.add_argument("--mode", action="append", choices=MODES, default=None,
                   help="retriever to evaluate; repeat for several (default: dense, bm25 and hybrid)")
    r.add_argument("--embedder", action="append", default=None,
                   help="embedder model name; repeat to compare (default: the active one)")
    _common_flags(r)
    r.set_defaults(func=retrieval_cmd)

    q = eval_sub.add_parser("qa", help="EM/F1, citations and refusals of the ask pipeline on SQuAD or HotpotQA")
    source = q.add_mutually_exclusive_group(required=True)
    source.add_argument("--squad", type=Path, metavar="FILE", help="SQuAD v1.1-format JSON (e.g. XQuAD)")
    source.add_argument("--hotpot", type=Path, metavar="FILE", help="HotpotQA distractor-format JSON")
    q.add_argument("--generator", action="append", default=None, metavar="SPEC", help=GENERATOR_HELP)
    condition = q.add_mutually_exclusive_group()
    condition.add_argument("--oracle", action="store_true", help="give the gold passage(s) instead of retrieving")
    condition.add_argument("--unanswerable", action="store_true",
                           help="retrieve but remove the gold passages: measures refusals vs hallucinations")
    q.add_argument("--mode", choices=MODES, default=None, help="retriever (default: settings' retrieve_mode)")
    q.add_argument("--top-k", dest="top_k", type=int, default=None, help="passages given to the model")
    q.add_argument("--temperature", type=float, default=None, help="sampling temperature (default 0: greedy)")
    q.add_argument("--max-tokens", dest="max_tokens", type=int, default=None)
    _common_flags(q)
    q.set_defaults(func=qa_cmd)

    c = eval_sub.add_parser("recheck", help="grade a finished `eval qa` run again with today's answer checker "
                                            "(no generation): a new run dir with the regraded report")
    c.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the `eval qa` run directory to regrade")
    c.add_argument("--name", default=None, help="new run name (default: the old one's, plus -recheck)")
    add_json_flag(c)
    c.set_defaults(func=recheck_cmd)


class _Bars:
    """Rich progress bars driven by the library's EvalEvents, started at the first bar so an error raised
    before any work (bad file, missing model) prints as one clean line."""

    def __init__(self, args):
        self.args, self.current = args, None
        self.progress = progress_bars(disable=args.json)

    def __call__(self, event) -> None:
        if event.kind == "run":
            err_console.print(f"run dir: {event.info}" + ("" if self.args.resume else
                              "  (if interrupted, rerun the same command with --resume RUN_DIR)"))
        elif event.kind == "phase":
            if self.current is None:
                self.progress.start()
            self.current = self.progress.add_task(event.phase[:40], total=event.total, info="")
        elif event.kind == "advance" and self.current is not None:
            self.progress.update(self.current, advance=event.n, info=event.info[:30])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.current is not None:
            self.progress.stop()


def _print_summary(summary: dict, metrics: list[str], scale: dict[str, float]) -> None:
    """Metrics as rows and systems as columns: a dozen QA metrics still fit a terminal."""
    from ..evaluate.metrics import Estimate

    def cell(value, m) -> str:
        est = value if isinstance(value, Estimate) else Estimate(**value)
        return est.fmt(scale.get(m, 100.0))

    table = Table(title=f"{summary['dataset']}: mean [95% bootstrap CI], ×100 unless a count")
    table.add_column("metric")
    for name in summary["systems"]:
        table.add_column(name, justify="right", no_wrap=True)
    for m in metrics:
        table.add_row(m, *[cell(s["metrics"][m], m) for s in summary["systems"].values()])
    console.print(table)
    if summary["comparisons"]:
        diffs = Table(title="paired differences (candidate − base), 95% bootstrap CI")
        for col in ("comparison", "metric", "difference", "verdict"):
            diffs.add_column(col, no_wrap=col != "comparison")
        colors = {"better": "green", "worse": "red"}
        for c in summary["comparisons"]:
            for m in metrics:
                d = c["metrics"][m]
                if d["verdict"] == "n/a":
                    continue
                color = colors.get(d["verdict"], "white")
                diffs.add_row(f"{c['candidate']} − {c['base']}", m, cell(d["diff"], m),
                              f"[{color}]{d['verdict']}[/]")
        console.print(diffs)
    console.print(f"report: {Path(summary['run_dir']) / 'report.md'}")


def retrieval_cmd(args) -> int:
    from ..evaluate.retrieval import METRICS, RetrievalConfig, run_retrieval_eval

    settings = settings_from(args)
    config = RetrievalConfig(str(args.beir), args.split, args.mode or list(MODES), args.embedder or [None],
                             args.limit, settings.seed if args.seed is None else args.seed, args.bootstrap,
                             args.name)
    with _Bars(args) as bars:
        result = run_retrieval_eval(settings, config, resume=args.resume, on_event=bars)
    if args.json:
        print_json(result.summary)
        return 0
    _print_summary(result.summary, list(METRICS), {})
    published = result.summary["published"]
    if published:
        console.print("published nDCG@10: " + ", ".join(f"{k} {v['ndcg@10'] * 100:.2f}" for k, v in published.items()))
    return 0


def qa_cmd(args) -> int:
    from ..evaluate.qa import QAConfig, run_qa_eval

    settings = settings_from(args)
    condition = "oracle" if args.oracle else "unanswerable" if args.unanswerable else "open"
    config = QAConfig(squad=str(args.squad) if args.squad else None, hotpot=str(args.hotpot) if args.hotpot else None,
                      generators=args.generator or [None], condition=condition, mode=args.mode, top_k=args.top_k,
                      temperature=0.0 if args.temperature is None else args.temperature, max_tokens=args.max_tokens,
                      limit=args.limit, seed=settings.seed if args.seed is None else args.seed,
                      resamples=args.bootstrap, name=args.name)
    with _Bars(args) as bars:
        result = run_qa_eval(settings, config, resume=args.resume, on_event=bars)
    return _print_qa(args, result.summary)


def _print_qa(args, summary: dict) -> int:
    from ..evaluate.qa import metrics_for

    if args.json:
        print_json(summary)
        return 0
    _print_summary(summary, list(metrics_for(summary["condition"])), {"answer_words": 1.0, "tokens_per_s": 1.0})
    return 0


def recheck_cmd(args) -> int:
    from ..evaluate.recheck import recheck_qa_run

    args.resume = True  # the run dir line needs no "--resume" hint: a recheck is redone in seconds
    with _Bars(args) as bars:
        result = recheck_qa_run(settings_from(args), args.run_dir, args.name, on_event=bars)
    return _print_qa(args, result.summary)
