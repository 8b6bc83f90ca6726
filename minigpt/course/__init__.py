"""Wing: the course machinery. What grades a learner's code and checks gradients.

    gradcheck.py   central finite differences in float64, and relative errors
    grader.py      `minigpt lesson check NN [--impl FILE]`: runs a lesson's check.py against an
                   implementation and reports each comparison

Teaches nothing by itself; the lessons/ folder uses it.
"""
