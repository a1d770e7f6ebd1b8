"""The rules of booking, in plain Python.

Nothing here imports Flask or SQLAlchemy (a nested ruff config enforces it): the
service layer loads rows, turns them into these values, and asks these functions.
"""
