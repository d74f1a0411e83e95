"""Interview scoring, answer parsing and the mechanical evaluation of criteria."""

from __future__ import annotations

import json
import re
from typing import Any

STOP = {"must", "should", "shall", "where", "which", "that", "with", "from", "this"}
READY_AT = 0.2


def parse_json(text: str) -> dict[str, Any] | None:
    """The first JSON object in a model's answer (fenced or not), or None."""
    text = text.strip()
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S)
    candidates = [fenced.group(1)] if fenced else []
    start = text.find("{")
    if start >= 0:
        candidates.append(text[start:text.rfind("}") + 1])
    for c in candidates:
        try:
            value = json.loads(c)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def clamp(x: Any) -> float:
    try:
        return min(1.0, max(0.0, float(x)))
    except (TypeError, ValueError):
        return 0.0


def ambiguity(scores: dict[str, Any]) -> float:
    return round(1 - (0.4 * clamp(scores.get("goal_clarity")) + 0.3 * clamp(scores.get("constraint_clarity"))
                      + 0.3 * clamp(scores.get("success_criteria"))), 4)


def interview_answer(text: str) -> dict[str, Any]:
    data = parse_json(text)
    if data is None:
        return {"is_task": True, "chat_response": "", "questions": ["Could you describe the goal in more detail?"],
                "scores": {"goal_clarity": 0.3, "constraint_clarity": 0.2, "success_criteria": 0.2}}
    questions = [str(q) for q in (data.get("questions") or []) if str(q).strip()][:3]
    raw_scores = data.get("scores")
    scores: dict[str, Any] = raw_scores if isinstance(raw_scores, dict) else {}
    return {"is_task": bool(data.get("is_task", True)), "chat_response": str(data.get("chat_response") or ""),
            "questions": questions, "scores": {k: clamp(scores.get(k)) for k in
                                               ("goal_clarity", "constraint_clarity", "success_criteria")}}


def seed_answer(text: str) -> dict[str, Any]:
    data = parse_json(text) or {}
    criteria = [str(c) for c in data.get("acceptance_criteria") or [] if str(c).strip()]
    ontology = [o for o in data.get("ontology") or [] if isinstance(o, dict)]
    return {"goal": str(data.get("goal") or "Task from user input")[:500],
            "constraints": [str(c) for c in data.get("constraints") or [] if str(c).strip()][:20],
            "acceptance_criteria": (criteria or ["Task completes without errors"])[:20],
            "ontology": [{"name": str(o.get("name", "")), "entity_type": str(o.get("entity_type", "concept")),
                          "description": str(o.get("description", ""))} for o in ontology][:20]}


def criterion_passes(criterion: str, output: str) -> bool:
    low_c, low_o = criterion.lower(), output.lower()
    if "exit code" in low_c or "exit status" in low_c:
        return "exit code 0" in low_o or "exit status 0" in low_o
    terms = {w for w in re.findall(r"[a-z0-9]+", low_c) if len(w) > 3 and w not in STOP}
    if not terms:
        return True
    return sum(1 for t in terms if t in low_o) / len(terms) >= 0.5


def mechanical(criteria: list[str], output: str) -> list[bool]:
    return [criterion_passes(c, output) for c in criteria]


def evaluation_answer(text: str) -> dict[str, Any]:
    data = parse_json(text) or {}
    return {"mechanical_pass": bool(data.get("mechanical_pass", False)),
            "semantic_pass": bool(data.get("semantic_pass", False)),
            "score": clamp(data.get("score", 0.0)), "notes": str(data.get("notes") or "")[:2000]}
