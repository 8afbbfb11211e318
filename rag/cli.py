"""``python app.py kb ...``: ingest, list, delete, search, re-index and evaluate knowledge bases.

Each command prints plain text, or JSON with ``--json``; a per-file failure
is printed and makes the exit status 1, while the other files are still
ingested. It builds what it needs from Settings and never starts the web app.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assistant.config import Settings


def add_parser(sub) -> None:
    kb = sub.add_parser("kb", help="manage knowledge bases (RAG)")
    cmds = kb.add_subparsers(dest="kb_command", required=True)
    ingest = cmds.add_parser("ingest", help="add or replace files in a collection")
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.add_argument("--collection", required=True)
    ingest.add_argument("--json", action="store_true")
    listing = cmds.add_parser("list", help="documents and their status")
    listing.add_argument("--collection")
    listing.add_argument("--json", action="store_true")
    delete = cmds.add_parser("delete", help="delete a document, or a whole collection")
    delete.add_argument("--collection", required=True)
    delete.add_argument("--doc", help="document id (the file's stem); omit to delete the collection")
    search = cmds.add_parser("search", help="ranked chunks for a query")
    search.add_argument("query")
    search.add_argument("--collection", required=True)
    search.add_argument("--k", type=int, default=5)
    search.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    search.add_argument("--json", action="store_true")
    reindex = cmds.add_parser("reindex", help="rebuild a collection from its kept originals")
    reindex.add_argument("--collection", required=True)
    evaluate = cmds.add_parser("eval", help="recall/MRR of dense, BM25 and hybrid on an eval set")
    evaluate.add_argument("--docs", required=True, type=Path)
    evaluate.add_argument("--queries", required=True, type=Path)
    evaluate.add_argument("--json", action="store_true")
    kb.set_defaults(func=run)


def _kb(settings: Settings):
    from assistant.services import Lingxi

    return Lingxi.create(settings, start_engine=False).kb  # the knowledge base never asks the model


def run(settings: Settings, args: argparse.Namespace) -> int:
    from rag.loaders import LoadError
    from rag.store import EmbeddingMismatch

    try:
        return COMMANDS[args.kb_command](settings, args)
    except (ValueError, LoadError, EmbeddingMismatch, ConnectionError) as exc:
        print(f"lingxi kb: {exc}", file=sys.stderr)
        return 2


def _ingest(settings: Settings, args) -> int:
    kb = _kb(settings)

    def progress(source: str, fraction: float) -> None:
        if not args.json:
            print(f"  {source}: {fraction:4.0%}", file=sys.stderr)

    outcomes = kb.ingest(args.paths, args.collection, on_progress=progress)
    if args.json:
        print(json.dumps([o.__dict__ for o in outcomes], ensure_ascii=False, indent=2))
    else:
        for o in outcomes:
            print(f"{o.status:9} {o.error or f'{o.source}: {o.chunks} chunks'}")
    return 1 if any(o.status == "error" for o in outcomes) else 0


def _list(settings: Settings, args) -> int:
    docs = _kb(settings).documents(args.collection)
    if args.json:
        print(json.dumps(docs, ensure_ascii=False, indent=2))
        return 0
    if not docs:
        print("no documents")
    for d in docs:
        extra = f" — {d['error']}" if d["error"] else ""
        print(f"{d['collection']}/{d['doc_id']}  {d['status']}  {d['chunks']} chunks  ({d['source']}){extra}")
    return 0


def _delete(settings: Settings, args) -> int:
    removed = _kb(settings).delete(args.collection, args.doc)
    what = f"document {args.doc}" if args.doc else f"collection {args.collection}"
    if not removed and args.doc:
        print(f"lingxi kb: no document {args.doc!r} in {args.collection!r}", file=sys.stderr)
        return 1
    print(f"deleted {what} ({removed} document(s))")
    return 0


def _search(settings: Settings, args) -> int:
    hits = _kb(settings).search(args.collection, args.query, k=args.k, mode=args.mode)
    rows = [
        {"rank": h.rank, "id": h.id, "doc_id": h.metadata.get("doc_id"), "source": h.metadata.get("source"),
         "section": h.metadata.get("section"), "page": h.metadata.get("page"), "score": round(h.score, 6),
         "dense_score": h.dense_score, "bm25_score": h.bm25_score, "text": h.text}
        for h in hits
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for r in rows:
            print(f"#{r['rank']} {r['score']:.4f} {r['doc_id']} ({r['source']} › {r['section'] or '-'})")
            print(f"    {r['text'][:160]}")
    return 0


def _reindex(settings: Settings, args) -> int:
    outcomes = _kb(settings).reindex(args.collection)
    for o in outcomes:
        print(f"{o.status:9} {o.error or f'{o.source}: {o.chunks} chunks'}")
    return 1 if any(o.status == "error" for o in outcomes) else 0


def _eval(settings: Settings, args) -> int:
    from assistant.context import TokenCounter
    from rag.embeddings import make_embedder
    from rag.evaluate import evaluate, format_report
    from rag.ingest import eval_ingest

    result = evaluate(args.docs, args.queries, settings=settings, embedder=make_embedder(settings),
                      ingest=eval_ingest(settings, TokenCounter()))
    print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else format_report(result))
    return 0


COMMANDS = {"ingest": _ingest, "list": _list, "delete": _delete, "search": _search, "reindex": _reindex, "eval": _eval}
