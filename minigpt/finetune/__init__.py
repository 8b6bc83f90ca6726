"""Chapter 11, fine-tuning: a pre-trained model taught a task from prompt/response pairs.

    tasks.py   JSONL task files, and batches whose loss ignores the prompt (prompt masking)
    run.py     finetune(): load a base model, build the task's batches, and run the training loop
"""
