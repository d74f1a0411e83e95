"""The workspace: files under ``$OXIOS_HOME/workspace``, their git history, and skills.

The ``Workspace`` actor (``actor.py``) is the single writer; ``pathguard`` is
the one definition of a safe path, shared with the edge.
"""
