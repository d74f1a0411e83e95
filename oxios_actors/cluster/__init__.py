"""Multi-node clusters on Thespian conventions."""
