"""Lingxi's web pages built with Gradio: the owner's chat (``ui.chat``).

Each module builds Blocks around a ``Lingxi`` object and leaves mounting to
``assistant.web``; the pure rendering helpers are in ``ui.chat_render``.
"""
