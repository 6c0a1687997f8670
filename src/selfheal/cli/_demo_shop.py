"""The demo shop's place on this machine: where its code is, its ports, its ``selfheal.toml``.

The shop (``examples/shop``: web, worker, recommendations) runs under the daemon exactly as a
user's programs would: the config written here is an ordinary ``selfheal.toml`` (kept in the
demo's work directory, so ``selfheal status -c`` works on it while the demo runs).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DemoPorts",
    "demo_config",
    "find_shop",
    "free_port",
    "port_is_free",
    "port_pair",
    "write_config",
]

#: What `find_shop` looks for, relative to the working directory and to a source checkout.
SHOP_PARTS = ("examples", "shop")
_SHOP_FILES = ("web.py", "worker.py", "recs.py", "shopdata.py")


def find_shop(explicit: str | None) -> Path:
    """Return the directory of the demo shop.

    Looks at `explicit`, then ``./examples/shop``, then the copy in the wheel
    (``selfheal/_demo_shop``), then the source checkout this package was installed from (an
    editable install or a clone).

    Raises:
        FileNotFoundError: Naming the places tried and how to give one.
    """
    here = Path(__file__).resolve()
    candidates = (
        [Path(explicit)]
        if explicit
        else [
            Path.cwd().joinpath(*SHOP_PARTS),
            here.parents[1] / "_demo_shop",
            here.parents[3].joinpath(*SHOP_PARTS),
        ]
    )
    for path in candidates:
        if all((path / name).is_file() for name in _SHOP_FILES):
            return path.resolve()
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"the demo shop is not at {tried}: it ships with selfheal (examples/shop in the "
        "source, selfheal/_demo_shop in the wheel); give its directory with --shop DIR"
    )


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Return whether TCP `port` of 127.0.0.1 can be bound now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_pair() -> int:
    """Return ``k`` such that ports ``10k`` and ``10k+1`` are both free.

    The web processes' own ports are ``{k}%(process_num)d`` in the config: one template that
    the supervisor expands per instance, as supervisord users write ``90%(process_num)02d``.
    """
    for _ in range(200):
        k = free_port() // 10
        if 1000 <= k <= 6553 and port_is_free(10 * k) and port_is_free(10 * k + 1):
            return k
    raise OSError("no two neighbouring free ports found on 127.0.0.1")


@dataclass(frozen=True)
class DemoPorts:
    """The ports of one demo run (all on 127.0.0.1)."""

    dashboard: int  # the daemon's control API, health endpoints and dashboard
    shop: int  # shared by the web processes (SO_REUSEPORT)
    admin_prefix: int  # web:N answers its own probes on port f"{admin_prefix}{N}"
    recs: int

    @classmethod
    def pick(cls, dashboard: int) -> DemoPorts:
        """Return free ports for the shop beside `dashboard` (0: a free one too)."""
        return cls(dashboard or free_port(), free_port(), port_pair(), free_port())

    def admin(self, instance: int) -> int:
        """Return the own port of web process `instance`."""
        return int(f"{self.admin_prefix}{instance}")


def _toml(value: object) -> str:
    """Return `value` as a TOML value (JSON strings, numbers and arrays are valid TOML)."""
    return json.dumps(value)


_UVICORN = [
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.auto",
]
#: What the spares of the web and recommendation programs import ahead (``preload``).
PRELOAD = {
    "web": [
        "web",
        "httpx",
        "selfheal.health.checks",
        "selfheal.web.health",
        "selfheal.web.wsgi",
        "wsgiref.simple_server",
        *_UVICORN,
    ],
    "recs": ["recs", *_UVICORN],
}


def demo_config(shop: Path, ports: DemoPorts, workdir: Path) -> str:
    """Return the ``selfheal.toml`` that runs the shop in `workdir`.

    Two web processes share the shop's port; each has a port of its own that its readiness
    and liveness probes reach (a probe on the shared port would test whichever process the
    kernel picked). The worker reports readiness and heartbeats with sd_notify. The
    recommendation service has no liveness probe on purpose: a hang of it is found by the
    daemon's health check and fixed by a recovery rule, while product pages fall back to
    popular products.
    """
    py = sys.executable
    shop_url = f"http://127.0.0.1:{ports.shop}"
    recs_url = f"http://127.0.0.1:{ports.recs}"
    admin = f"http://127.0.0.1:{ports.admin_prefix}%(process_num)d"
    common_env = {
        "SHOP_DB": f"sqlite:///{workdir / 'shop.db'}",
        "SHOP_OUTBOX": str(workdir / "outbox.db"),
        "SHOP_RECS_URL": recs_url,
    }

    def env(**more: str) -> str:
        items = {**common_env, **more}
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in items.items()) + " }"

    return f"""\
# Written by `selfheal demo`: the demo shop under selfheal. Try, while it runs:
#   selfheal status -c {workdir / "selfheal.toml"}
#   selfheal events -c {workdir / "selfheal.toml"} --since 5m

[control]
state_dir = {_toml(str(workdir / "state"))}
port = {ports.dashboard}

[programs.web]
command = [{_toml(py)}, "web.py"]
cwd = {_toml(str(shop))}
numprocs = 2
env = {env(PORT=str(ports.shop), SHOP_ADMIN_PORT=f"{ports.admin_prefix}%(process_num)d")}
stop_grace = 0.5              # a hung process ignores SIGTERM: SIGKILL soon after
backoff_initial = 0.1
backoff_reset = 5
max_restarts = 30
ready = "probe"
preload = {_toml(PRELOAD["web"])}   # a restart takes a spare with these imports done

[programs.web.readiness]
http = "{admin}/readyz"
interval = 0.1
timeout = 1

# /livez is answered by a thread of the web process: in milliseconds even while its event
# loop is busy, so short timeouts do not kill a process that is merely busy.
[programs.web.liveness]
http = "{admin}/livez"
interval = 0.1
timeout = 0.25
failure_threshold = 3         # ~1 s without an answer: restart

[programs.worker]
command = [{_toml(py)}, "worker.py"]
cwd = {_toml(str(shop))}
env = {env()}
ready = "notify"
watchdog_sec = 5
stop_grace = 2
backoff_initial = 0.1
max_restarts = 30

[programs.recs]
command = [{_toml(py)}, "recs.py"]
cwd = {_toml(str(shop))}
env = {env(PORT=str(ports.recs))}
stop_grace = 0.5
backoff_initial = 0.1
max_restarts = 30
ready = "probe"
preload = {_toml(PRELOAD["recs"])}

[programs.recs.readiness]
http = "{recs_url}/healthz"
interval = 0.1
timeout = 1

[health]
drain_seconds = 0.5

[health.checks.shop]
http = "{shop_url}/"
interval = 2
timeout = 1

[health.checks.recommendations]
http = "{recs_url}/healthz"
interval = 1
timeout = 0.5
failure_threshold = 2
# Critical, so that its failure is an incident the rule below acts on; the shop itself keeps
# serving meanwhile, with popular products in place of recommendations.
critical = true

[health.checks.disk]
disk = {_toml(str(workdir))}
min_free_ratio = 0.02
interval = 10

[synthetic.browse]
base_url = "{shop_url}"
interval = 3
timeout = 5
retries = 1
retry_delay = 0.2
steps = [
  {{ path = "/", conditions = ["[STATUS] == 200", "[RESPONSE_TIME] < 1000"] }},
  {{ path = "/search?q=tent", conditions = ["[STATUS] == 200"] }},
  {{ path = "/product/3", conditions = ["[STATUS] == 200", "[BODY].product.id == 3"] }},
]

[synthetic.checkout]
base_url = "{shop_url}"
interval = 5
timeout = 5
retries = 1
retry_delay = 0.2

[[synthetic.checkout.steps]]
path = "/product/2"
capture = {{ product = "[BODY].product.id" }}

# The same order id every run: checkout is idempotent on it, so probes add one order.
[[synthetic.checkout.steps]]
method = "POST"
path = "/checkout"
json = {{ order_id = "synthetic-checkout", product_id = "{{product}}", quantity = 1 }}
expect = {{ status = [201, 202] }}

# The supervisor restarts what exits or fails its liveness probe; this rule handles what it
# cannot see: a recommendation service that still runs but no longer answers.
[[recovery]]
name = "restart a recommendation service that stopped answering"
on = "health.recommendations.failed"
steps = [{{ restart = "recs" }}]
verify = {{ checks = ["recommendations"], within = 15, interval = 0.5 }}
cooldown = 5

[[recovery]]
name = "start again what the supervisor gave up on"
on = "process.*.fatal"
steps = [{{ restart = "{{subject}}" }}]
cooldown = 30
"""


def write_config(shop: Path, ports: DemoPorts, workdir: Path) -> Path:
    """Write `demo_config` to ``workdir/selfheal.toml`` and return its path."""
    path = workdir / "selfheal.toml"
    path.write_text(demo_config(shop, ports, workdir))
    os.chmod(path, 0o600)
    return path
