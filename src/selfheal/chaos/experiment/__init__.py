"""Chaos experiments: a steady state, a method that injects faults, rollbacks that always run.

Experiments are written in TOML, or are Chaos Toolkit files (JSON or YAML) using the
``process``, ``http`` and ``python`` providers; both load into one `Experiment`, which an
`ExperimentRunner` runs on an injected clock, publishing ``chaos.<name>.*`` events and
returning a `RunRecord` (outcome, exit code, time to detect and to recover).

    experiment = load_experiment("kill-web.toml")
    record = ExperimentRunner(bus=bus).run(experiment)
    sys.exit(record.exit_code)  # 0 held, 1 deviated, 2 aborted, 3 not met before

New provider types (a selfheal fault) plug in through a `ProviderRegistry`.
"""

from selfheal.chaos._safety import (
    ENVIRONMENT_VARIABLE,
    ChaosRefusedError,
    refuse_in_production,
)
from selfheal.chaos.experiment._fields import ExperimentError, ExperimentIssue, Fields
from selfheal.chaos.experiment._loaders import FORMATS, load_experiment, parse_experiment
from selfheal.chaos.experiment._model import (
    AbortConditions,
    Activity,
    ActivityContext,
    ActivityError,
    ActivityKind,
    During,
    Experiment,
    Pauses,
    Provider,
    Recovery,
    SteadyState,
    Tolerance,
)
from selfheal.chaos.experiment._providers import (
    DEFAULT_TIMEOUT,
    HttpProvider,
    ProcessProvider,
    ProviderFactory,
    ProviderRegistry,
    PythonProvider,
    default_registry,
)
from selfheal.chaos.experiment._report import (
    EXIT_CODES,
    ActivityResult,
    Outcome,
    RunRecord,
    SteadyStateCheck,
    scrub,
    secret_values,
)
from selfheal.chaos.experiment._runner import ExperimentRunner, Progress, run_experiment
from selfheal.chaos.experiment._tolerances import (
    Among,
    Equals,
    JsonPath,
    ProbeTolerance,
    Range,
    Regex,
    StatusCode,
    parse_tolerance,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENVIRONMENT_VARIABLE",
    "EXIT_CODES",
    "FORMATS",
    "AbortConditions",
    "Activity",
    "ActivityContext",
    "ActivityError",
    "ActivityKind",
    "ActivityResult",
    "Among",
    "ChaosRefusedError",
    "During",
    "Equals",
    "Experiment",
    "ExperimentError",
    "ExperimentIssue",
    "ExperimentRunner",
    "Fields",
    "HttpProvider",
    "JsonPath",
    "Outcome",
    "Pauses",
    "ProbeTolerance",
    "ProcessProvider",
    "Progress",
    "Provider",
    "ProviderFactory",
    "ProviderRegistry",
    "PythonProvider",
    "Range",
    "Recovery",
    "Regex",
    "RunRecord",
    "StatusCode",
    "SteadyState",
    "SteadyStateCheck",
    "Tolerance",
    "default_registry",
    "load_experiment",
    "parse_experiment",
    "parse_tolerance",
    "refuse_in_production",
    "run_experiment",
    "scrub",
    "secret_values",
]
