"""The chat orchestrator (Ouroboros): interview → seed → execute → evaluate → evolve."""
