"""`python app.py kb ...` end to end, with the bundled e5 model and embedded Chroma."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EVALSETS = ROOT / "rag" / "evalsets"


def kb(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGXI_") or k.startswith("LINGXI_DATA")}
    return subprocess.run([sys.executable, str(ROOT / "app.py"), "kb", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_ingest_list_search_delete(tmp_path):
    docs = EVALSETS / "zh" / "docs"
    bad = tmp_path / "scan.pdf"
    bad.write_bytes(b"%PDF-1.7 truncated")
    result = kb("ingest", str(docs / "returns.md"), str(docs / "delivery.md"), str(bad), "--collection", "bakery")
    assert result.returncode == 1  # one file failed; the others went in
    assert "ready     returns.md" in result.stdout and "error     scan.pdf" in result.stdout

    listed = json.loads(kb("list", "--collection", "bakery", "--json").stdout)
    assert {d["doc_id"]: d["status"] for d in listed} == {"returns": "ready", "delivery": "ready", "scan": "error"}

    result = kb("search", "蛋糕买回来不满意能退吗", "--collection", "bakery", "--k", "2", "--json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert hits[0]["doc_id"] == "returns" and hits[0]["rank"] == 1 and hits[0]["source"] == "returns.md"
    assert {"id", "score", "text", "section"} <= hits[0].keys()

    assert kb("delete", "--collection", "bakery", "--doc", "returns").returncode == 0
    listed = json.loads(kb("list", "--collection", "bakery", "--json").stdout)
    assert "returns" not in {d["doc_id"] for d in listed}
    missing = kb("delete", "--collection", "bakery", "--doc", "returns")
    assert missing.returncode == 1 and "no document" in missing.stderr


def test_bad_collection_name_is_one_clear_line():
    result = kb("search", "hi", "--collection", "no spaces allowed!")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "invalid knowledge base name" in result.stderr


def test_eval_prints_side_by_side_metrics_as_json():
    result = kb("eval", "--docs", str(EVALSETS / "en" / "docs"), "--queries", str(EVALSETS / "en" / "queries.jsonl"),
                "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for mode in ("dense", "bm25", "hybrid"):
        assert 0 <= report["retrieval"][mode]["recall@1"] <= report["retrieval"][mode]["recall@5"] <= 1
    assert report["retrieval"]["hybrid"]["recall@5"] >= report["retrieval"]["dense"]["recall@5"]
    assert {"precision", "recall"} <= report["unanswerable"].keys()
    assert report["chunks_per_second"] > 0 and report["latency_ms"]["p95"] >= report["latency_ms"]["p50"]
