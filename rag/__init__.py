"""Knowledge base retrieval (RAG over Chroma).

Empty until the knowledge-base feature lands: loaders, splitter, embeddings,
store and retriever will live here, one module each (see shared DESIGN.md §1).
"""
