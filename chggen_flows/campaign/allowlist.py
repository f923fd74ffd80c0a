"""Which jobs a chggen worker runs: functions and FireWorks tasks of allowed packages only.

A FireWorks document names the task class a worker loads (``_fw_name``) and a jobflow
job names the function it calls (module and name); the worker imports and runs them.
Whoever can write the LaunchPad could therefore run code as the user whose worker
picks the job up. So before a job is deserialised (deserialising already imports the
modules it names), its document is checked:

- every task is a ``{{module.Class}}`` of an allowed package (jobflow's
  ``JobFiretask`` is the one chggen submits); FireWorks' short names (``ScriptTask``,
  ``PyTask``: a shell command, any Python function) are refused;
- every ``@module`` anywhere in the tasks (the job's function, the Maker it is bound
  to, its arguments) is in an allowed package, or in a data package whose objects
  chggen passes between jobs (pymatgen structures, numpy arrays, ...).

- no ``_fw_name`` anywhere else in the spec names anything else (FireWorks loads
  every such object of a spec when it reads the job).

Allowed: ``chggen_flows``, ``atomate2``, ``jobflow`` and the user's
``worker_allowed_packages`` setting. A refused job FIZZLES unrun, its error saying why
(:class:`JobNotAllowedError`); ``chggen resume`` does not re-run it and ``chggen
status`` lists it.

How a refused job fizzles: the worker's checkout is handed, instead of the job, a
copy whose only task is :class:`RefusedTask` (which raises the refusal) and whose
original spec is kept as inert JSON text (``spec._chggen_refused_spec``, for whoever
investigates). FireWorks then records an ordinary FIZZLED launch. (FireWorks' own
"could not deserialise" path is no use here: it sets FIZZLED without a launch, and
its next workflow refresh puts the job back to READY, so a worker would loop on it.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fireworks.core.firework import FiretaskBase
from fireworks.utilities.fw_utilities import explicit_serialize

from chggen_flows.errors import ChggenError

if TYPE_CHECKING:
    from fireworks import LaunchPad

#: Packages whose functions and tasks a worker runs.
ALLOWED_PACKAGES = ("chggen_flows", "atomate2", "jobflow")
#: Packages of the data objects chggen's jobs exchange (rebuilt from ``@module`` /
#: ``@class``, never called as a job's function nor loaded as a task).
DATA_PACKAGES = ("pymatgen", "emmet", "monty", "numpy", "datetime", "uuid", "bson", "pathlib")
#: Spec keys a refused job keeps (what ``chggen status`` groups jobs by).
_KEPT_SPEC_KEYS = ("campaign", "stage", "_category", "_priority", "tags")
REFUSED_KEY = "_chggen_refused"
_FW_NAME = re.compile(r"^\{\{([A-Za-z_][\w.]*)\.([A-Za-z_]\w*)\}\}$")


class JobNotAllowedError(ChggenError):
    """A job names a function or task outside the allowed packages; it was not run."""


def in_packages(module: str, packages: Iterable[str]) -> bool:
    """Whether ``module`` is one of ``packages`` or inside one (``a.b`` is in ``a``)."""
    return any(module == p or module.startswith(p + ".") for p in packages)


def allowed_packages(extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The allowed packages: :data:`ALLOWED_PACKAGES` and ``extra`` (the setting)."""
    return tuple(dict.fromkeys([*ALLOWED_PACKAGES, *extra]))


def _values(obj: Any, key: str, path: str = "") -> Iterator[tuple[str, str]]:
    """Every value of ``key`` (``@module``, ``_fw_name``) in ``obj`` with where it is."""
    if isinstance(obj, dict):
        value = obj.get(key)
        if value is not None:
            yield str(value), path or "."
        for name, item in obj.items():
            yield from _values(item, key, f"{path}.{name}" if path else str(name))
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from _values(item, key, f"{path}[{i}]")


def job_function(spec: dict) -> str | None:
    """``module.name`` of the function a FireWorks spec's jobflow job calls, or None."""
    for task in spec.get("_tasks") or []:
        if not isinstance(task, dict):
            continue
        function = (
            (task.get("job") or {}).get("function") if isinstance(task.get("job"), dict) else None
        )
        if isinstance(function, dict):
            return f"{function.get('@module')}.{function.get('@callable')}"
    return None


def refusals(spec: dict, extra: Sequence[str] = ()) -> list[str]:
    """Why a worker would refuse the job of FireWorks ``spec`` (empty: it runs it).

    Parameters
    ----------
    spec
        The ``spec`` of a Firework document, as stored in the LaunchPad.
    extra
        Packages allowed besides :data:`ALLOWED_PACKAGES` (``worker_allowed_packages``).
    """
    allowed = allowed_packages(extra)
    problems: list[str] = []
    tasks = spec.get("_tasks")
    if not isinstance(tasks, list):
        return ["the job has no task list"]
    for i, task in enumerate(tasks):
        name = task.get("_fw_name") if isinstance(task, dict) else None
        match = _FW_NAME.match(str(name))
        if match is None or not in_packages(match.group(1), allowed):
            problems.append(f"task {i} is {name!r}, not a task of {', '.join(allowed)}")
    for name, where in _values({k: v for k, v in spec.items() if k != "_tasks"}, "_fw_name"):
        match = _FW_NAME.match(name)
        if match is None or not in_packages(match.group(1), allowed):
            problems.append(f"spec.{where} loads {name!r}")
    function = job_function(spec)
    if function is not None and not in_packages(function, allowed):
        problems.append(f"its function {function} is outside {', '.join(allowed)}")
    for module, where in _values(tasks, "@module"):
        if where.endswith("job.function"):
            continue  # reported above, with its name
        if not in_packages(module, (*allowed, *DATA_PACKAGES)):
            problems.append(f"{where} names module {module}")
    return problems


def check_spec(spec: dict, extra: Sequence[str] = (), fw_id: int | None = None) -> None:
    """Raise :class:`JobNotAllowedError` if a worker must not run the job of ``spec``."""
    problems = refusals(spec, extra)
    if problems:
        which = f"job {fw_id}" if fw_id is not None else "job"
        raise JobNotAllowedError(
            f"refused to run {which}: {'; '.join(problems)}; nothing was run",
            hint="if you trust this code, add its package to worker_allowed_packages "
            "(CHGGEN_WORKER_ALLOWED_PACKAGES) and `chggen resume` the campaign; otherwise "
            "someone wrote to your LaunchPad: check who can reach your database",
        )


@explicit_serialize
class RefusedTask(FiretaskBase):
    """Stands in for the tasks of a refused job: raises its refusal, runs nothing."""

    required_params = ("message",)

    def run_task(self, fw_spec: dict) -> None:
        """Raise :class:`JobNotAllowedError` (the job FIZZLES with it)."""
        raise JobNotAllowedError(
            self["message"],
            hint="if you trust this code, add its package to worker_allowed_packages "
            "(CHGGEN_WORKER_ALLOWED_PACKAGES) and submit it again; otherwise someone "
            "wrote to your LaunchPad: check who can reach your database",
        )


def refused_doc(doc: dict, message: str) -> dict:
    """The Firework document ``doc`` with its tasks replaced by a :class:`RefusedTask`.

    The original spec is kept as JSON text: inert (no ``_fw_name`` for FireWorks to
    load) but there for whoever investigates.
    """
    spec = doc.get("spec") or {}
    kept = {k: spec[k] for k in _KEPT_SPEC_KEYS if k in spec}
    return {
        **doc,
        "spec": {
            **kept,
            "_tasks": [RefusedTask(message=message).to_dict()],
            REFUSED_KEY: message,
            f"{REFUSED_KEY}_spec": json.dumps(spec, default=str),
        },
    }


def guard_launchpad(launchpad: LaunchPad, extra: Sequence[str] = ()) -> LaunchPad:
    """Make ``launchpad`` check every job before it is deserialised for a worker.

    FireWorks' checkout (``LaunchPad._get_a_fw_to_run``, used by ``launch_rocket``,
    ``rapidfire`` and ``rlaunch``) reads the reserved job with ``get_fw_by_id``. The
    guard checks the raw document there, so a refused job's modules are never
    imported: the worker gets the :func:`refused_doc` version, which FIZZLES with
    :class:`JobNotAllowedError` as its error. Returns the same object (its
    ``get_fw_by_id`` replaced); its ``chggen_refused`` lists the ids of the jobs it
    refused.
    """
    from fireworks import Firework

    extra = tuple(extra)
    refused: list[int] = []

    def get_fw_by_id(fw_id: int) -> Firework:
        doc = launchpad.get_fw_dict_by_id(fw_id)
        spec = doc.get("spec") or {}
        if REFUSED_KEY not in spec:
            problems = refusals(spec, extra)
            if problems:
                message = f"refused to run job {fw_id}: {'; '.join(problems)}; nothing was run"
                doc = refused_doc(doc, message)
                if fw_id not in refused:
                    refused.append(fw_id)
        return Firework.from_dict(doc)

    launchpad.get_fw_by_id = get_fw_by_id  # type: ignore[method-assign]
    launchpad.chggen_refused = refused  # type: ignore[attr-defined]
    return launchpad


#: The task chggen submits (``flow_to_workflow``): one per Firework.
JOB_FIRETASK = "{{jobflow.managers.fireworks.JobFiretask}}"


def fworker_query(extra: Sequence[str] = ()) -> dict:
    """A FWorker ``query`` that matches only jobflow jobs of allowed packages.

    For plain FireWorks workers (``rlaunch``/``qlaunch`` with the FWorker files in
    ``launchpad_configs/``), which cannot be guarded in-process: they never check out
    a job outside the allowlist (it stays READY, and ``chggen status`` lists it as one a
    worker refuses). Coarser than :func:`refusals`: it checks the tasks' class and the
    job's function, not every object in the arguments.
    """
    packages = "|".join(re.escape(p) for p in allowed_packages(extra))
    return {
        "spec._tasks": {"$not": {"$elemMatch": {"_fw_name": {"$ne": JOB_FIRETASK}}}},
        "spec._tasks.job.function.@module": {"$regex": f"^({packages})(\\.|$)"},
    }


def refusal_of(fw_doc: dict) -> str | None:
    """Why a worker refused the job of Firework document ``fw_doc`` (None: it did not)."""
    return (fw_doc.get("spec") or {}).get(REFUSED_KEY)
