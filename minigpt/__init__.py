"""minigpt: a GPT built from scratch in pure NumPy, written to be read as a textbook.

The spine, in the order the chapters teach it (lessons/NN_name/):

    tokenizer/    01  text <-> ids: characters, byte-level BPE (GPT-2 exact)
    layers/       02-06  forward/backward pairs: embedding, layer-norm, linear, attention, MLP, softmax, loss
    model.py      07  GPT-2 assembled from the pairs; kv_cache.py and decode.py for generation
    optim.py      08  SGD to AdamW, the cosine schedule, gradient clipping
    training/     09  batches, the training loop, presets
    sampling.py   10  logits -> next token -> text
    finetune/     11  prompt/response tasks with the prompt masked
    metrics/      12  perplexity, BLEU, ROUGE

The wings, which make the spine a tool and teach nothing by themselves: datasets/ (recipes and cleaning),
files/ (safetensors, checkpoints, atomic writes, downloads, paths), hf.py (Hugging Face GPT-2 folders),
course/ (grader, gradient checker), engines.py (the switch for the fast engines), allocator.py, cli.py.

Importing minigpt does nothing but define names: no allocator settings, no threads, no files.
"""

__version__ = "0.1.0"
