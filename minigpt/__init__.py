"""minigpt: a GPT built from scratch in pure NumPy, written to be read as a textbook.

The package mirrors the data flow, one idea per file:
text -> tokenizer -> ids -> layers (embedding, layer-norm, attention, MLP) -> logits -> loss
-> backward -> optimizer -> checkpoint -> sampler -> text. See the lessons/ folder for the chapters.
"""

__version__ = "0.1.0"

from minigpt.allocator import keep_freed_memory as _keep_freed_memory

_keep_freed_memory()   # reuse freed arrays' memory instead of page-faulting fresh pages (see allocator.py)
