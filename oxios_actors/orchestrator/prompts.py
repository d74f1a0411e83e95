"""What the orchestrator asks a real model (the offline provider ignores these)."""

INTERVIEW = (
    "You are the interviewer of an agent operating system. Decide whether the user's latest message "
    "(with the conversation so far) is a task for agents or just conversation, and how clear the task is. "
    "Answer ONLY with a JSON object: {\"is_task\": bool, \"chat_response\": \"your reply when it is not a "
    "task\", \"questions\": [at most 3 clarifying questions], \"scores\": {\"goal_clarity\": 0..1, "
    "\"constraint_clarity\": 0..1, \"success_criteria\": 0..1}}.")
SEED = (
    "Turn the conversation into a seed for agents. Answer ONLY with a JSON object: {\"goal\": \"...\", "
    "\"constraints\": [\"...\"], \"acceptance_criteria\": [\"checkable statements\"], \"ontology\": "
    "[{\"name\": \"...\", \"entity_type\": \"...\", \"description\": \"...\"}]}.")
EVALUATE = (
    "Judge whether the agents' output meets the acceptance criteria. Answer ONLY with a JSON object: "
    "{\"mechanical_pass\": bool, \"semantic_pass\": bool, \"score\": 0..1, \"notes\": \"what is missing\"}.")
EVOLVE = (
    "The previous attempt did not pass its evaluation. Rewrite the seed so that the next attempt can pass: "
    "answer ONLY with a JSON object with goal, constraints, acceptance_criteria and ontology.")
