"""Orchestrator: runs every chat as its own state machine (many at once), through
interview → seed → execute → evaluate → evolve, and is the only writer of seeds
and sessions.  Model calls run on worker threads that a timer polls; agents and
groups answer with ``AgentResult`` / ``GroupResult`` messages."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..agents.messages import (
    AgentResult,
    AgentSpec,
    GroupResult,
    GroupSpawned,
    SpawnAgent,
    Spawned,
    SpawnGroup,
)
from ..llm import Completion, make_provider
from ..llm.base import ChatRequest
from ..messages import Failure
from ..paths import workspace_root
from ..personas import records as personas
from ..service import DEFERRED, ReplyTo, ServiceActor, rfc3339
from ..store import ReadOnlyStore, open_writer, pack, unpack
from . import evaluate as ev
from . import prompts
from .messages import Chat, ChatReply, DeleteSession, RunSeedTask
from .records import SEEDS, SESSIONS, new_seed_id

POLL_SECS = 0.02


@dataclass
class Run:
    id: str
    reply_to: ReplyTo | None
    content: str
    session: dict[str, Any]
    phase: str = "interview"
    seed: dict[str, Any] | None = None
    evolutions: int = 0
    priority: str = "Normal"
    persona: dict[str, Any] | None = None
    outputs: list[str] = field(default_factory=list)
    recalled: list[str] = field(default_factory=list)


class Orchestrator(ServiceActor):
    name = "orchestrator"

    def on_configure(self) -> None:
        self.seeds_env = open_writer(self.home, SEEDS)
        self.seeds = self.seeds_env.open_db(SEEDS.encode())
        self.sessions_env = open_writer(self.home, SESSIONS)
        self.sessions = self.sessions_env.open_db(SESSIONS.encode())
        self.reader = ReadOnlyStore(self.home)  # personas are another service's
        self.provider = make_provider(self.section("engine"))
        self.pool = ThreadPoolExecutor(8, thread_name_prefix="oxios-orch")
        self.calls: dict[str, tuple[Future[Completion], Callable[[Completion | Exception], None]]] = {}
        self.runs: dict[str, Run] = {}
        self.waiting: dict[str, str] = {}  # agent or group id -> run id
        self.polling = False

    def on_config_changed(self) -> None:
        if hasattr(self, "pool"):
            self.provider = make_provider(self.section("engine"))

    def stats(self) -> dict[str, Any]:
        return {"active_chats": len(self.runs), "model_calls_in_flight": len(self.calls)}

    # -- storage ------------------------------------------------------------------
    def save_seed(self, seed: dict[str, Any]) -> None:
        with self.seeds_env.begin(write=True, db=self.seeds) as txn:
            txn.put(seed["id"].encode(), pack(seed))

    def load_session(self, sid: str) -> dict[str, Any] | None:
        with self.sessions_env.begin(db=self.sessions) as txn:
            raw = txn.get(sid.encode())
        return None if raw is None else unpack(raw)

    def save_session(self, session: dict[str, Any]) -> None:
        session["updated_at"] = rfc3339()
        session["updated_ts"] = time.time()  # for ordering within the same second
        with self.sessions_env.begin(write=True, db=self.sessions) as txn:
            txn.put(session["id"].encode(), pack(session))

    def on_DeleteSession(self, msg: DeleteSession) -> Any:
        with self.sessions_env.begin(write=True, db=self.sessions) as txn:
            if not txn.delete(msg.id.encode()):
                return Failure(404, f"session {msg.id} not found")
        return {"status": "deleted", "id": msg.id}

    # -- entry points -------------------------------------------------------------
    def on_Chat(self, msg: Chat) -> Any:
        if not msg.content.strip():
            return Failure(400, "content must not be empty")
        sid = msg.session_id or f"session-{uuid.uuid4()}"
        session = self.load_session(sid) or {
            "id": sid, "user_id": msg.user_id or "default", "user_messages": [], "agent_responses": [],
            "active_seed_id": None, "active_persona_id": None, "created_at": rfc3339(), "updated_at": rfc3339(),
            "metadata": {}}
        session["user_messages"].append(msg.content)
        persona = personas.active(self.reader)
        session["active_persona_id"] = persona["id"] if persona else None
        self.save_session(session)
        run = Run(msg.message_id or str(uuid.uuid4()), self.reply_to, msg.content, session, persona=persona)
        self.runs[run.id] = run
        self.publish("message_received", session_id=sid, user_id=session["user_id"], message_id=run.id)
        self.start_phase(run, "interview")
        meta = session["metadata"]
        start = int(meta.get("interview_from", len(session["user_messages"]) - 1))
        transcript = session["user_messages"][start:]
        self.llm(run, "interview", prompts.INTERVIEW, "\n\n".join(transcript), self.interviewed)
        return DEFERRED

    def on_RunSeedTask(self, msg: RunSeedTask) -> Any:
        if not msg.goal.strip():
            return Failure(400, "goal must not be empty")
        sid = msg.session_id or f"{msg.source}-{uuid.uuid4()}"
        session = self.load_session(sid) or {
            "id": sid, "user_id": msg.source, "user_messages": [], "agent_responses": [], "active_seed_id": None,
            "active_persona_id": None, "created_at": rfc3339(), "updated_at": rfc3339(), "metadata": {}}
        session["user_messages"].append(msg.goal)
        self.save_session(session)
        run = Run(str(uuid.uuid4()), self.reply_to, msg.goal, session, priority=msg.priority,
                  persona=personas.active(self.reader))
        self.runs[run.id] = run
        seed = {"goal": msg.goal, "constraints": list(msg.constraints),
                "acceptance_criteria": list(msg.acceptance_criteria) or ["Task completes without errors"],
                "ontology": []}
        self.start_phase(run, "seed")
        self.create_seed(run, seed, generation=0, parent=None)
        return DEFERRED

    # -- phases -------------------------------------------------------------------
    def start_phase(self, run: Run, phase: str) -> None:
        run.phase = phase
        self.publish("phase_started", phase=phase, session_id=run.session["id"], message_id=run.id)

    def end_phase(self, run: Run, summary: str) -> None:
        self.publish("phase_completed", phase=run.phase, summary=summary, session_id=run.session["id"],
                     message_id=run.id)

    def interviewed(self, run: Run, answer: Completion | Exception) -> None:
        if isinstance(answer, Exception):
            return self.fail(run, f"the model could not be reached: {answer}")
        result = ev.interview_answer(answer.content)
        meta = run.session["metadata"]
        if not result["is_task"] and not meta.get("interview_pending"):
            self.end_phase(run, "chat")
            reply = result["chat_response"] or "I'm here. Tell me what you would like done."
            return self.respond(run, reply)
        amb = ev.ambiguity(result["scores"])
        meta["last_ambiguity"] = amb
        if amb > ev.READY_AT and result["questions"]:
            if not meta.get("interview_pending"):
                meta["interview_pending"] = True
                meta["interview_from"] = len(run.session["user_messages"]) - 1
            self.end_phase(run, "needs clarification")
            questions = "\n".join(f"{i}. {q}" for i, q in enumerate(result["questions"], 1))
            return self.respond(run, f"Before I start, I need a little more detail:\n{questions}")
        start = int(meta.pop("interview_from", len(run.session["user_messages"]) - 1))
        meta.pop("interview_pending", None)
        self.end_phase(run, "ready for seed")
        self.start_phase(run, "seed")
        transcript = "\n\n".join(run.session["user_messages"][start:])
        self.llm(run, "seed", prompts.SEED, transcript,
                 lambda r, a: self.seeded(r, a))

    def seeded(self, run: Run, answer: Completion | Exception) -> None:
        if isinstance(answer, Exception):
            return self.fail(run, f"the model could not be reached: {answer}")
        self.create_seed(run, ev.seed_answer(answer.content), generation=0, parent=None)

    def create_seed(self, run: Run, fields: dict[str, Any], generation: int, parent: str | None) -> None:
        seed = {"id": new_seed_id(), **fields, "created_at": rfc3339(), "generation": generation,
                "parent_seed_id": parent, "score": None, "passed": None, "notes": None,
                "session_id": run.session["id"]}
        self.save_seed(seed)
        run.seed = seed
        run.session["active_seed_id"] = seed["id"]
        self.save_session(run.session)
        self.publish("seed_created", seed_id=seed["id"], generation=generation, parent_seed_id=parent,
                     session_id=run.session["id"])
        self.end_phase(run, "generated" if generation == 0 else "evolved")
        self.version_seed(seed, f"seed {seed['id']}: {seed['goal'][:60]}")
        self.consult_memory(run)

    def version_seed(self, seed: dict[str, Any], message: str) -> None:
        """Seeds (and their evaluations) are files in the workspace, committed to git."""
        from ..workspace.messages import CommitPaths

        ws = workspace_root(self.home, self.config)
        path = ws / "seeds" / f"{seed['id']}.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({k: v for k, v in seed.items() if k != "session_id"}, indent=2))
        except OSError:
            return
        workspace = self.directory.get("workspace")
        if workspace is not None:
            self.send(workspace, CommitPaths((f"seeds/{seed['id']}.json",), message, "orchestrator"))

    def consult_memory(self, run: Run) -> None:
        """What the system remembers about similar goals goes to the agents as context."""
        from ..memory.messages import SearchSemantic

        assert run.seed is not None
        if not self.section("memory").get("enabled", True) or not self.ask_service(
                "memory", f"{run.id}:memory", SearchSemantic(run.seed["goal"], None, 3)):
            self.execute(run)

    def execute(self, run: Run) -> None:
        assert run.seed is not None
        seed = run.seed
        self.start_phase(run, "execute")
        persona = run.persona or {}
        base = dict(system_prompt=persona.get("system_prompt", ""), model=persona.get("model"),
                    seed_id=seed["id"], priority=run.priority, session_id=run.session["id"])
        context = tuple([f"Constraint: {c}" for c in seed["constraints"]]
                        + [f"Acceptance criterion: {c}" for c in seed["acceptance_criteria"]]
                        + [f"Remembered: {m}" for m in run.recalled])
        criteria = seed["acceptance_criteria"]
        threshold = int(self.section("orchestrator").get("parallel_threshold", 5))
        if len(criteria) >= threshold:
            members = tuple(AgentSpec(f"{seed['goal']}: {c}", name=f"{seed['goal'][:60]}: {c[:40]}",
                                      plan_path=f"plans/{seed['id']}-{i}.md", context=context, **base)
                            for i, c in enumerate(criteria, 1))
            request: Any = SpawnGroup(f"seed {seed['id']}", members, seed["id"], self.myAddress)
        else:
            request = SpawnAgent(AgentSpec(seed["goal"], name=seed["goal"][:120], plan_path=f"plans/{seed['id']}.md",
                                           context=context, **base), self.myAddress)
        if not self.ask_service("agents", f"{run.id}:spawn", request):
            self.fail(run, "the agent supervisor is not available")

    def on_answer(self, rid: str, reply: Any) -> None:
        run_id, _, what = rid.partition(":")
        run = self.runs.get(run_id)
        if run is None:
            return
        if what == "memory":
            from ..memory.messages import Recalled
            if isinstance(reply, Recalled):
                run.recalled = [str(e.get("content", ""))[:500] for e in reply.entries
                                if float(e.get("similarity") or 0) >= 0.3]
            self.execute(run)
            return
        if what != "spawn":
            return
        if isinstance(reply, Spawned):
            self.waiting[reply.agent_id] = run.id
        elif isinstance(reply, GroupSpawned):
            self.waiting[reply.group_id] = run.id
        else:
            self.fail(run, f"could not start agents: {getattr(reply, 'error', reply)}")

    def on_AgentResult(self, msg: AgentResult) -> None:
        run = self.runs.get(self.waiting.pop(msg.agent_id, ""))
        if run is not None:
            self.executed(run, [msg])

    def on_GroupResult(self, msg: GroupResult) -> None:
        run = self.runs.get(self.waiting.pop(msg.group_id, ""))
        if run is not None:
            self.executed(run, list(msg.results))

    def executed(self, run: Run, results: list[AgentResult]) -> None:
        assert run.seed is not None
        self.end_phase(run, "completed" if all(r.status == "Completed" for r in results) else "failed")
        ws = workspace_root(self.home, self.config)
        parts = []
        for r in results:
            parts.append(r.output or f"[{r.status}] {r.error or ''}")
        for plan in sorted((ws / "plans").glob(f"{run.seed['id']}*.md")) if (ws / "plans").is_dir() else []:
            parts.append(plan.read_text(errors="replace")[:20_000])
        output = "\n\n".join(parts)
        run.outputs.append(output)
        self.start_phase(run, "evaluate")
        checks = ev.mechanical(run.seed["acceptance_criteria"], output)
        if all(checks) and all(r.status == "Completed" for r in results):
            return self.evaluated(run, {"mechanical_pass": True, "semantic_pass": True, "score": 1.0,
                                        "notes": "All acceptance criteria met (mechanical check)."}, checks)
        criteria = "\n".join(f"- [{'x' if ok else ' '}] {c}" for c, ok in zip(run.seed["acceptance_criteria"], checks, strict=True))
        prompt = f"Goal: {run.seed['goal']}\nCriteria:\n{criteria}\n\nOutput:\n{output[:3000]}"
        self.llm(run, "evaluate", prompts.EVALUATE, prompt,
                 lambda r, a: self.evaluated(r, ev.evaluation_answer(a.content) if isinstance(a, Completion)
                                             else {"mechanical_pass": False, "semantic_pass": False, "score": 0.0,
                                                   "notes": f"evaluation failed: {a}"}, checks))

    def evaluated(self, run: Run, result: dict[str, Any], checks: list[bool]) -> None:
        seed = run.seed
        assert seed is not None
        passed = all(checks) or result["score"] >= 0.7
        seed.update(score=round(result["score"], 4), passed=passed, notes=result["notes"])
        self.save_seed(seed)
        self.version_seed(seed, f"evaluation {seed['id']}: score {seed['score']:.2f}")
        self.publish("evaluation_complete", seed_id=seed["id"], score=seed["score"], passed=passed,
                     session_id=run.session["id"])
        self.end_phase(run, f"score={seed['score']:.2f}")
        max_evolutions = int(self.section("orchestrator").get("max_evolutions", 3))
        if passed or result["score"] >= 0.8 or run.evolutions >= max_evolutions:
            if not passed:
                self.start_phase(run, "evolve")
                self.end_phase(run, "no evolution")
            return self.finish(run, result)
        self.start_phase(run, "evolve")
        run.evolutions += 1
        run.priority = "High"
        body = json.dumps({k: seed[k] for k in ("goal", "constraints", "acceptance_criteria", "ontology")})
        self.llm(run, "evolve", prompts.EVOLVE, f"Evaluation notes: {result['notes']}\nSeed: {body}",
                 lambda r, a: self.evolved(r, a))

    def evolved(self, run: Run, answer: Completion | Exception) -> None:
        assert run.seed is not None
        if isinstance(answer, Exception):
            self.end_phase(run, "no evolution")
            return self.finish(run, {"score": run.seed["score"] or 0.0, "notes": f"evolution failed: {answer}"})
        parent = run.seed
        self.create_seed(run, ev.seed_answer(answer.content), generation=parent["generation"] + 1,
                         parent=parent["id"])

    def finish(self, run: Run, result: dict[str, Any]) -> None:
        seed = run.seed
        assert seed is not None
        text = f"Task '{seed['goal']}' completed. " + (
            "Evaluation passed." if seed["passed"] else f"Evaluation score: {round(100 * (seed['score'] or 0))}%.")
        if result.get("notes"):
            text += f"\n{result['notes']}"
        memory = self.directory.get("memory")
        if memory is not None and self.section("memory").get("enabled", True):
            from ..memory.messages import Remember
            outcome = "passed" if seed["passed"] else f"scored {round(100 * (seed['score'] or 0))}%"
            self.send(memory, Remember(f"Task '{seed['goal']}' {outcome}. {result.get('notes') or ''}"[:4000],
                                       "episode", ("orchestrator",), 0.5, source="orchestrator"))
        self.respond(run, text)

    # -- ending -------------------------------------------------------------------
    def respond(self, run: Run, text: str) -> None:
        seed = run.seed
        run.session["agent_responses"].append({
            "content": text, "session_id": run.session["id"], "seed_id": seed["id"] if seed else None,
            "phase_reached": run.phase, "evaluation_passed": seed.get("passed") if seed else None,
            "timestamp": rfc3339()})
        self.save_session(run.session)
        self.runs.pop(run.id, None)
        self.reply(run.reply_to, ChatReply(run.id, run.content, text, run.session["id"], run.phase,
                                           seed["id"] if seed else None, seed.get("passed") if seed else None))

    def fail(self, run: Run, error: str) -> None:
        self.runs.pop(run.id, None)
        self.end_phase(run, "failed")
        self.reply(run.reply_to, Failure(502, error))

    # -- model calls --------------------------------------------------------------
    def llm(self, run: Run, purpose: str, system: str, user: str,
            then: Callable[[Run, Completion | Exception], None]) -> None:
        persona = run.persona or {}
        messages = [{"role": "system", "content": "\n\n".join(p for p in (persona.get("system_prompt"), system) if p)},
                    {"role": "user", "content": user}]
        request = ChatRequest(messages, [], persona.get("model"), temperature=0.2, max_tokens=2048, purpose=purpose)
        future = self.pool.submit(self.provider.complete, request)
        key = uuid.uuid4().hex
        self.calls[key] = (future, lambda answer: then(run, answer))
        if not self.polling:
            self.polling = True
            self.after(POLL_SECS, "poll")

    def on_wakeup(self, payload: Any) -> None:
        if payload != "poll":
            return
        self.polling = False
        for key, (future, then) in list(self.calls.items()):
            if future.done():
                del self.calls[key]
                exc = future.exception()
                then(exc if isinstance(exc, Exception) else future.result())
        if self.calls and not self.polling:
            self.polling = True
            self.after(POLL_SECS, "poll")

    def on_stop(self) -> None:
        if hasattr(self, "pool"):
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.seeds_env.close()
            self.sessions_env.close()
            self.reader.close()
