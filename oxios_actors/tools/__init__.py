"""The tools agents call, each going Permissions → (Approvals) → execute → Audit."""
