"""The built-in offline provider: deterministic, no network, honest.

It is what runs when no model is configured, so that the whole pipeline works on
a fresh machine: it classifies messages, scores ambiguity, extracts a seed from
the text, and as an agent writes a real plan file into the workspace through the
``file_write`` tool.  Every reply it writes for a person says that no model is
configured and how to configure one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .base import ChatRequest, Completion, ToolCall

NO_MODEL = ("No language model is configured, so Oxios is running its built-in offline provider. "
            "Configure one with PUT /api/config {\"engine\": {\"provider\": \"openai\", \"base_url\": "
            "\"http://127.0.0.1:11434/v1\", \"default_model\": \"llama3.1\"}} (any OpenAI-compatible "
            "server: OpenAI, Ollama, vLLM, llama.cpp) or the OXIOS_LLM_BASE_URL environment variable.")

TASK_VERBS = {"build", "create", "write", "implement", "fix", "debug", "refactor", "review", "test", "add",
              "make", "generate", "deploy", "setup", "set", "design", "analyze", "analyse", "document",
              "develop", "migrate", "update", "remove", "delete", "rename", "optimize", "install",
              "configure", "plan", "research", "summarize", "summarise", "backup", "back", "check",
              "run", "convert", "port", "translate", "draft", "prepare", "compile", "clean"}
CONSTRAINT_MARKERS = re.compile(r"\b(with|using|in|without|must|should|only|no|under|within|via|on)\b", re.I)
SUCCESS_MARKERS = re.compile(r"\b(so that|must|should|pass(es)?|tests?|returns?|criteria|exit code|"
                             r"works?|verify|ensure|until)\b", re.I)
STOP = {"a", "an", "the", "and", "or", "to", "of", "for", "with", "in", "on", "it", "me", "my", "please",
        "i", "you", "we", "that", "this", "is", "be", "can", "could", "would"}


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9][A-Za-z0-9_+#.-]*", text)


def is_task(text: str) -> bool:
    ws = [w.lower() for w in words(text)]
    return any(w in TASK_VERBS for w in ws[:6]) or (any(w in TASK_VERBS for w in ws) and len(ws) >= 4)


def scores(text: str) -> dict[str, float]:
    content = [w for w in words(text) if w.lower() not in STOP]
    goal = min(1.0, 0.3 + 0.1 * len(content))
    constraint = 0.9 if CONSTRAINT_MARKERS.search(text) else 0.5
    success = 0.9 if SUCCESS_MARKERS.search(text) else (0.75 if len(content) >= 4 else 0.4)
    return {"goal_clarity": round(goal, 2), "constraint_clarity": constraint, "success_criteria": success}


def split_constraints(text: str) -> list[str]:
    out = []
    for m in re.finditer(r"\b(with|using|without|in|must|should|only)\b([^,.;]+)", text, re.I):
        phrase = (m.group(1) + m.group(2)).strip()
        if len(phrase.split()) >= 2:
            out.append(phrase[0].upper() + phrase[1:])
    return out[:5]


def seed_from(text: str) -> dict[str, Any]:
    first = re.split(r"(?<=[.!?])\s|\n", text.strip(), maxsplit=1)[0].strip().rstrip(".!?")
    goal = first[:200] or "Task from user input"
    constraints = split_constraints(text)
    criteria = [c.strip().rstrip(".") for c in re.findall(r"(?:^|\n)\s*(?:[-*]|\d+[.)])\s+(.+)", text)]
    if not criteria:
        criteria = [f"{goal} is done", "Task completes without errors"]
    nouns = [w for w in words(goal) if w.lower() not in STOP and w.lower() not in TASK_VERBS][:4]
    ontology = [{"name": n, "entity_type": "concept", "description": f"{n} as named in the request"} for n in nouns]
    return {"goal": goal, "constraints": constraints, "acceptance_criteria": criteria[:10], "ontology": ontology}


def last_user(request: ChatRequest) -> str:
    for m in reversed(request.messages):
        if m.get("role") == "user":
            return str(m.get("content") or "")
    return ""


class OfflineProvider:
    name = "offline"
    model = "offline"

    def complete(self, request: ChatRequest) -> Completion:
        handler = getattr(self, f"_{request.purpose}", self._chat)
        content, calls = handler(request)
        prompt = sum(len(str(m.get("content") or "")) for m in request.messages) // 4 + 1
        return Completion(content, tuple(calls), prompt, len(content) // 4 + 1, self.model)

    def _chat(self, request: ChatRequest) -> tuple[str, list[ToolCall]]:
        return f"You said: {last_user(request)[:200]!r}. {NO_MODEL}", []

    def _interview(self, request: ChatRequest) -> tuple[str, list[ToolCall]]:
        transcript = " ".join(str(m.get("content") or "") for m in request.messages if m.get("role") == "user")
        task = is_task(transcript)
        sc = scores(transcript)
        questions = []
        if sc["goal_clarity"] < 0.7:
            questions.append("Could you describe the goal in more detail?")
        if sc["constraint_clarity"] < 0.7:
            questions.append("Which technologies, limits or constraints should the work respect?")
        if sc["success_criteria"] < 0.7:
            questions.append("How will we know it is done (acceptance criteria)?")
        answer = {"is_task": task, "chat_response": "" if task else f"{NO_MODEL}",
                  "questions": questions[:3], "scores": sc}
        return json.dumps(answer), []

    def _seed(self, request: ChatRequest) -> tuple[str, list[ToolCall]]:
        transcript = "\n".join(str(m.get("content") or "") for m in request.messages if m.get("role") == "user")
        return json.dumps(seed_from(transcript)), []

    def _agent(self, request: ChatRequest) -> tuple[str, list[ToolCall]]:
        """First turn: write the plan with file_write; after the tool result: report."""
        tool_results = [m for m in request.messages if m.get("role") == "tool"]
        task = last_user(request)
        match = re.search(r"\[plan:([^\]]+)\]", " ".join(str(m.get("content") or "") for m in request.messages))
        plan_path = match.group(1) if match else "plans/plan.md"
        if not tool_results:
            steps = seed_from(task)
            body = "\n".join(f"{i}. {c}" for i, c in enumerate(steps["acceptance_criteria"], 1))
            plan = (f"# Plan\n\n## Task\n\n{task.strip()}\n\n## Steps\n\n{body}\n\n"
                    f"## Note\n\n{NO_MODEL}\n")
            return "", [ToolCall("call_plan", "file_write", {"path": plan_path, "content": plan})]
        result = str(tool_results[-1].get("content") or "")
        ok = not result.startswith("error")
        status = "exit code 0" if ok else "exit code 1"
        return (f"Task: {task.strip()}\nPlan written to {plan_path} ({status}). {result[:200]}\n{NO_MODEL}"), []

    def _evaluate(self, request: ChatRequest) -> tuple[str, list[ToolCall]]:
        text = last_user(request)
        ok = "exit code 0" in text or "written" in text
        return json.dumps({"mechanical_pass": ok, "semantic_pass": ok, "score": 0.75 if ok else 0.3,
                           "notes": "Judged by the offline provider (no model configured): "
                                    + ("the agent produced its output." if ok else "no usable output.")}), []

    def _evolve(self, request: ChatRequest) -> tuple[str, list[ToolCall]]:
        text = last_user(request)
        try:
            seed = json.loads(text[text.index("{"):])
        except ValueError:
            seed = seed_from(text)
        seed["constraints"] = list(seed.get("constraints", [])) + ["Address the evaluation notes"]
        seed["goal"] = str(seed.get("goal", "Task")) + " (refined)"
        return json.dumps(seed), []
