"""Chapter 09, training: batches in, a trained model and its checkpoints out.

    config.py     TrainConfig: the hyperparameters, their checks, and the TOML presets in presets/
    batches.py    where batches come from: random windows of a token file (pre-training), or task examples
    loop.py       train(): the loop itself, batch -> loss and grads -> clip -> lr -> step -> eval/checkpoint

The optimizer is minigpt/optim.py; checkpoints are written by minigpt/files/checkpoint.py.
"""
