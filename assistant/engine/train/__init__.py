"""Training Lingxi's bundled offline model (issue 7).

Does: generate synthetic assistant conversations (``data``), train a byte-level BPE tokenizer
(``tokenizer``), train a small DeepSeek-V3-architecture MoE built from the engine's own modules
(``model``, ``loop``), write it in HF layout, and score it on a held-out split (``evaluate``).

Does not: download anything, or run at app start-up (the app only loads the shipped result).
"""

from pathlib import Path

# Where the shipped model lives. Defined here, not in ``assistant.config``, so the engine's own
# command line (``python -m assistant.engine``) needs none of the app's packages.
BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "bundled" / "lingxi-mini"
