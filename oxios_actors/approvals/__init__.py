"""Human-in-the-loop approvals."""
