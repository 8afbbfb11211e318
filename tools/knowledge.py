"""The knowledge-base tool: find passages that answer a customer's question.

Searches the widget site's collections, else the configured ones (``LINGXI_KB_COLLECTIONS``), with hybrid
retrieval and returns numbered passages for the model to cite as [1], [2].
The agent turns the passages into ``citation`` events for the UI. Below the
relevance threshold it returns no passages and says so, so the assistant
admits it doesn't know and offers a human instead of guessing.
"""

from __future__ import annotations

from tools.registry import ToolContext

SNIPPET = 1200  # characters of each passage sent to the model
ANSWER_FROM_PASSAGES = ("Answer only from these passages and cite them as [ref], e.g. [1]. If they don't answer "
                        "the question, say so and offer a human.")
NO_PASSAGE_INSTRUCTION = ("The knowledge base has no relevant passage. Say you don't know, and offer to pass "
                          "the question to a human (create_ticket with the customer's contact).")


def no_passage() -> dict:
    """The answer when no passage is relevant (a fresh dict: callers may add to it)."""
    return {"passages": [], "no_relevant_passage": True, "instruction": NO_PASSAGE_INSTRUCTION}


def search_knowledge_base(context: ToolContext, query: str, k: int = 4) -> dict:
    """Search the business's knowledge base (manuals, policies, FAQ) for passages that answer a question.

    Args:
        query: the customer's question or its key words, in their language.
        k: how many passages to return, 1 to 8.
    """
    if context.kb is None:
        raise RuntimeError("the knowledge base is not available in this process")
    k = max(1, min(k, 8))
    hits = []
    for collection in context.kb_collections:
        hits += context.kb.search(collection, query, k=k)
    hits.sort(key=lambda h: h.dense_score if h.dense_score is not None else -1.0, reverse=True)
    hits = hits[:k]
    if not hits or not context.kb.retriever.answerable(hits):
        return no_passage()
    passages = [
        {
            "ref": i,
            "doc_id": h.metadata.get("doc_id"),
            "source": h.metadata.get("source"),
            "title": h.metadata.get("title"),
            "section": h.metadata.get("section") or None,
            "page": h.metadata.get("page"),
            "score": round(h.dense_score if h.dense_score is not None else h.score, 4),
            "text": h.text[:SNIPPET],
        }
        for i, h in enumerate(hits, start=1)
    ]
    return {"passages": passages, "instruction": ANSWER_FROM_PASSAGES}
