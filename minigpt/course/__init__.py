"""Wing: the course machinery. What grades a learner's code, diagnoses it, and checks gradients.

    gradcheck.py   central finite differences in float64, and relative errors
    grader.py      `minigpt lesson check NN [--impl FILE] [--step K]`: runs a lesson's check.py against an
                   implementation, step by step, and reports each comparison
    diagnose.py    bug signatures of a failing array (constant ratio, sign flip, transpose, shift, missing
                   sum, NaN, not updated in place) and where its worst difference is
    hints.py       a lesson's hints.toml: progressive hints per step (`minigpt lesson hint NN K`), pitfalls
    notebook.py    `minigpt lesson notebook NN`: the chapter and its walk-through as a Jupyter notebook

Teaches nothing by itself; the lessons/ folder uses it.
"""
