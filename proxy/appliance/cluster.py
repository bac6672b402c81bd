"""``impala-lb cluster``: a whole local Impala cluster behind the balancer, on one machine.

``cluster up`` starts, each as its own process with Impala's flags and its own
log: a statestored HA pair, a catalogd HA pair (when catalogd is installed),
three impalads, and the balancer on :5000 with a config rendered by
:mod:`haconfig.layouts`. Every daemon gets its own loopback address
(127.0.0.11-13 for the impalads, .21-.22 statestore, .31-.32 catalog), so each
keeps Impala's default ports, as on a real cluster. Sample data is generated
locally. ``status``, ``stop``, ``kill <daemon>`` and ``start <daemon>`` act on
the processes recorded in the run directory, by PID.

With ``--lb-pair`` the cluster runs in network namespaces behind two balancers, each
with a keepalived, and one virtual IP (:mod:`proxy.appliance.cluster_pair`); the
processes themselves are :mod:`proxy.appliance.daemon`'s.

The run directory (default ``./run``) holds everything: ``state.json`` (the
daemons, their command lines and PIDs), ``logs/``, the shared ``warehouse/``,
the rendered ``haproxy.cfg`` and the balancer's admin socket.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from proxy.appliance import cluster_pair, netns
from proxy.appliance.daemon import (
    Daemon,
    alive,
    http_json,
    spawn,
    stop_pid,
    wait_healthy,
    wait_listening,
)

STATE = "state.json"
LB_NAME = "impala-lb"
HAPROXY_NAME = "haproxy"
AGENT_NAME = "impala-agent"
#: the Impala agent's agent-check port, on the balancer's address
AGENT_PORT = 25999


def bindir() -> Path:
    """Where this installation's commands are (the venv's bin)."""
    return Path(sys.executable).parent


def plan(
    run: Path,
    *,
    impalads: int = 3,
    port: int = 5000,
    bind: str = "127.0.0.1",
    bins: Path | None = None,
    net: str = "127.0.0",
    balancer: str = "impala-lb",
    flag_dir: Path | None = None,
) -> list[Daemon]:
    """The daemons of the default local cluster, in start order; state lives below ``run``.

    ``balancer`` is ``impala-lb`` (the Impala controller in-process) or ``haproxy``
    (Debian's HAProxy on the same rendered config, the controller beside it as
    ``impala-lb agent``). The Impala daemons read ``common.flags`` and their own
    ``<name>.flags`` from ``flag_dir`` (default ``<run>/flags``), as operators keep one
    common flagfile for all of Impala's daemons."""
    bins = bins or bindir()
    flag_dir = flag_dir or run / "flags"
    ss_hosts, cat_hosts = _hosts(net)
    daemons: list[Daemon] = []
    for i, host in enumerate(ss_hosts):
        peer = ss_hosts[1 - i]
        own = [
            f"--hostname={host}",
            f"--listen_host={host}",
            f"--webserver_interface={host}",
            f"--state_store_peer_host={peer}",
            "--statestore_ha_preemption_wait_period_ms=2000",
            # The active statestored designates the active catalogd of the pair.
            "--catalogd_ha_preemption_wait_period_ms=2000",
        ]
        name = f"statestored-{i + 1}"
        daemons.append(
            _impala_daemon(
                name, "statestored", host, bins, flag_dir, own, 25010, "statestore.active-status"
            )
        )
    for i, host in enumerate(cat_hosts):
        own = [f"--hostname={host}", f"--listen_host={host}"]
        name = f"catalogd-{i + 1}"
        daemons.append(
            _impala_daemon(
                name, "catalogd", host, bins, flag_dir, own, 25020, "catalog-server.active-status"
            )
        )
    for i in range(impalads):
        daemons.append(impalad(i + 1, net, run, bins, flag_dir))
    cfg = str(run / "haproxy.cfg")
    agent = f"{bind}:{AGENT_PORT}"
    if balancer == HAPROXY_NAME:
        daemons.append(
            Daemon(
                AGENT_NAME,
                "agent",
                bind,
                [
                    str(bins / "impala-lb"),
                    "agent",
                    f"--listen={agent}",
                    f"--config={cfg}",
                    f"--stats-socket={run / 'admin.sock'}",
                ],
                None,
            )
        )
        lb = [HAPROXY, "-db", "-f", cfg, "-p", str(run / "lb.pid")]
    else:
        lb = [
            str(bins / "impala-lb"),
            "-f",
            cfg,
            "-p",
            str(run / "lb.pid"),
            f"--impala-agent={agent}",
        ]
    daemons.append(Daemon(balancer, "impala-lb", bind, lb, None))
    return daemons


#: Debian's HAProxy, for ``cluster up --balancer haproxy``
HAPROXY = "/usr/sbin/haproxy"


def impalad(index: int, net: str, run: Path, bins: Path, flag_dir: Path) -> Daemon:
    """The ``index``-th impalad (from 1): on ``<net>.<10 + index>``, Impala's ports."""
    host = f"{net}.{10 + index}"
    name = f"impalad-{index}"
    own = [f"--listen_host={host}", f"--hostname={host}", f"--log_dir={run / 'logs' / name}"]
    return _impala_daemon(name, "impalad", host, bins, flag_dir, own, 25000)


def _impala_daemon(
    name: str,
    kind: str,
    host: str,
    bins: Path,
    flag_dir: Path,
    own: list[str],
    web: int,
    role_metric: str | None = None,
) -> Daemon:
    argv = [
        str(bins / kind),
        f"--flagfile={flag_dir / 'common.flags'}",
        f"--flagfile={flag_dir / f'{name}.flags'}",
    ]
    return Daemon(name, kind, host, argv, web, role_metric, flags=own)


def _hosts(net: str) -> tuple[list[str], list[str]]:
    """The statestored pair's and the catalogd pair's addresses."""
    return [f"{net}.21", f"{net}.22"], [f"{net}.31", f"{net}.32"]


def common_flags(run: Path, net: str = "127.0.0") -> list[str]:
    """``common.flags``: what every Impala daemon of the cluster reads (each acts on its
    own share: an impalad flag in it is no statestored's, as in Impala)."""
    ss_hosts, cat_hosts = _hosts(net)
    return [
        f"--state_store_host={ss_hosts[0]}",
        "--state_store_port=24000",
        f"--state_store_2_host={ss_hosts[1]}",
        "--state_store_2_port=24000",
        "--enable_statestored_ha",
        "--enable_catalogd_ha",
        f"--catalog_service_host={cat_hosts[0]}",
        f"--warehouse_dir={run / 'warehouse'}",
    ]


def flagfile_text(title: str, flags: Sequence[str]) -> str:
    return "\n".join([f"# {title}", *flags]) + "\n"


def write_flagfiles(run: Path, daemons: Iterable[Daemon], net: str) -> None:
    """``<run>/flags/common.flags`` and each Impala daemon's own flagfile."""
    flag_dir = run / "flags"
    flag_dir.mkdir(parents=True, exist_ok=True)
    common = flagfile_text("read by every Impala daemon of the cluster", common_flags(run, net))
    (flag_dir / "common.flags").write_text(common)
    for d in daemons:
        if d.flags:
            text = flagfile_text(f"{d.name}: read after common.flags", d.flags)
            (flag_dir / f"{d.name}.flags").write_text(text)


def description(daemons: Iterable[Daemon], *, port: int, bind: str, run: Path) -> dict[str, Any]:
    """The cluster description (see docs/cluster-toml.md) the balancer config is rendered from
    (``--lb-pair`` adds ``[lb_pair]`` and moves the agent to each balancer's loopback:
    :func:`cluster_pair.write_configs`)."""
    ds = list(daemons)
    desc: dict[str, Any] = {
        "cluster": {"name": "impala-lb local cluster", "bind": bind},
        "coordinator": [{"host": d.host, "name": d.name} for d in ds if d.kind == "impalad"],
        "frontends": {
            "shell": {"port": port},
            "hue": {"port": port + 1},
            "hs2_http": {"port": port + 2},
            "beeswax": {"port": port + 3},
            "statestore_ui": {"port": 25010},
        },
        "stats": {"socket": str(run / "admin.sock"), "page": {"port": 8404, "bind": bind}},
    }
    if any(d.kind in ("agent", "impala-lb") for d in ds):
        # the Impala controller (in-process in impala-lb, beside HAProxy as its own
        # process); leastconn weighed by Impala's registered queries
        # (bench.bench_impala_balance)
        desc["impala_agent"] = {
            "port": AGENT_PORT,
            "address": bind,
            "interval": "1s",
            "weights": "queries",
        }
    ss = [{"host": d.host} for d in ds if d.kind == "statestored"]
    if ss:
        desc["statestored"] = {"servers": ss}
    cats = [{"host": d.host} for d in ds if d.kind == "catalogd"]
    if cats:
        desc["catalogd"] = {"servers": cats}
        desc["frontends"]["catalog_ui"] = {"port": 25020}
    return desc


def render_config(desc: dict[str, Any]) -> str:
    from haconfig.layouts import description_from_mapping, layout
    from haconfig.render import render

    return render(layout(description_from_mapping(desc, source="cluster up")))


# --- processes -------------------------------------------------------------------------


# --- state -----------------------------------------------------------------------------


def save(
    run: Path, daemons: Sequence[Daemon], port: int, pair: dict[str, Any] | None = None
) -> None:
    """The state; ``pair`` (``--lb-pair``: namespaces, VIP) is kept from the last save
    when not given (``{}``: there is none)."""
    if pair is None:
        pair = load_pair(run)
    data: dict[str, Any] = {"port": port, "daemons": [dataclasses.asdict(d) for d in daemons]}
    if pair:
        data["pair"] = pair
    tmp = run / (STATE + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(run / STATE)


def load(run: Path) -> tuple[list[Daemon], int]:
    try:
        data = json.loads((run / STATE).read_text())
    except FileNotFoundError:
        raise SystemExit(f"no cluster in {run} (run 'impala-lb cluster up' first)") from None
    return [Daemon(**d) for d in data["daemons"]], int(data["port"])


def load_pair(run: Path) -> dict[str, Any] | None:
    """``--lb-pair``'s record (cluster_pair.record), None for a cluster without one."""
    try:
        pair = json.loads((run / STATE).read_text()).get("pair")
    except (FileNotFoundError, ValueError):
        return None
    return pair if isinstance(pair, dict) else None


# --- sample data -----------------------------------------------------------------------

SAMPLE_SQL = [
    "CREATE DATABASE IF NOT EXISTS sample COMMENT 'generated by impala-lb cluster up'",
    "CREATE TABLE IF NOT EXISTS sample.customers (id BIGINT, name STRING, country STRING,"
    " signup DATE) STORED AS PARQUET",
    "CREATE TABLE IF NOT EXISTS sample.orders (id BIGINT, customer_id BIGINT,"
    " amount DECIMAL(10,2), ordered_at TIMESTAMP, status STRING) STORED AS PARQUET",
]


def load_sample_data(run: Path, metastore: Path) -> None:
    """Create the sample tables and write their Parquet files with DuckDB, locally.

    The tables are created through the engine (so the metastore knows them),
    their data files are generated by DuckDB into the tables' directories, and
    ``REFRESH`` picks them up, exactly as files written by another tool would be. This
    runs before the catalogds start, on the metastore file they share."""
    import duckdb

    from backends.impalad.sql import Engine, Session

    warehouse = run / "warehouse"
    metastore.parent.mkdir(parents=True, exist_ok=True)
    engine = Engine(warehouse, catalog_path=metastore)
    try:
        session = Session(user="impala-lb")
        for sql in SAMPLE_SQL:
            engine.execute(session, sql).close()
        con = duckdb.connect()
        try:
            cdir = warehouse / "sample.db" / "customers"
            odir = warehouse / "sample.db" / "orders"
            cdir.mkdir(parents=True, exist_ok=True)
            odir.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"""COPY (SELECT i::BIGINT AS id, 'customer ' || i AS name,
                    ['NL','DE','FR','US','JP','BR'][1 + i % 6] AS country,
                    DATE '2020-01-01' + (i % 1500)::INTEGER AS signup
                  FROM range(1, 1001) t(i)) TO '{cdir / "customers-0.parq"}' (FORMAT PARQUET)"""
            )
            con.execute(
                f"""COPY (SELECT i::BIGINT AS id, (1 + i * 7919 % 1000)::BIGINT AS customer_id,
                    ((i * 37 % 100000) / 100.0)::DECIMAL(10,2) AS amount,
                    TIMESTAMP '2024-01-01' + to_seconds(i * 97) AS ordered_at,
                    ['new','paid','shipped','returned'][1 + i % 4] AS status
                  FROM range(1, 100001) t(i)) TO '{odir / "orders-0.parq"}' (FORMAT PARQUET)"""
            )
        finally:
            con.close()
        for table in ("sample.customers", "sample.orders"):
            engine.execute(session, f"REFRESH {table}").close()
    finally:
        engine.close()


# --- commands --------------------------------------------------------------------------


def admin_command(run: Path, command: str, timeout: float = 3.0) -> str:
    """One command on the balancer's stats socket (like ``socat stdio unix:...``)."""
    return _ask(run / "admin.sock", command, timeout)


def _ask(path: Path, command: str, timeout: float = 3.0) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def lb_view(run: Path, sock: Path | None = None) -> dict[str, str]:
    """Server name -> status as the balancer sees it (``show stat`` on its admin socket,
    or on ``sock``: another balancer's), best effort."""
    try:
        csv = admin_command(run, "show stat") if sock is None else _ask(sock, "show stat")
    except OSError:
        return {}
    lines = csv.splitlines()
    if not lines or not lines[0].startswith("# "):
        return {}
    header = lines[0][2:].split(",")
    try:
        sv, st = header.index("svname"), header.index("status")
    except ValueError:
        return {}
    view: dict[str, str] = {}
    for line in lines[1:]:
        cols = line.split(",")
        if len(cols) > st and cols[sv] not in ("FRONTEND", "BACKEND"):
            prev = view.get(cols[sv])
            view[cols[sv]] = cols[st] if prev in (None, cols[st]) else f"{prev}/{cols[st]}"
    return view


def role(d: Daemon) -> str:
    if not d.role_metric or not d.web_port:
        return "-"
    try:
        url = f"http://{d.host}:{d.web_port}/jsonmetrics?json"
        metrics = netns.call(d.netns, lambda: http_json(url))
    except (urllib.error.URLError, OSError, ValueError):
        return "?"
    value = _find(metrics, d.role_metric)
    if value is None:
        return "?"
    return "active" if value in (True, "true", 1) else "standby"


def _find(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            found = _find(v, key)
            if found is not None:
                return found
    if isinstance(obj, list):
        for v in obj:
            found = _find(v, key)
            if found is not None:
                return found
    return None


def _stop_all(daemons: Sequence[Daemon], pair: dict[str, Any] | None = None) -> None:
    """Stop every daemon, the last started first; then remove ``pair``'s namespaces."""
    for d in reversed(daemons):
        stop_pid(d.pid)
    cluster_pair.teardown(pair)


def _command(name: str) -> str:
    """How to type this installation's ``name``: bare when it is the one on PATH."""
    ours = bindir() / name
    found = shutil.which(name)
    return name if found and Path(found).resolve() == ours.resolve() else str(ours)


def cmd_up(args: argparse.Namespace) -> int:
    run: Path = args.dir.resolve()
    if (run / STATE).exists():
        daemons, _ = load(run)
        if any(alive(d.pid) for d in daemons):
            print(f"a cluster is already running from {run}; 'impala-lb cluster stop' first")
            return 1
    run.mkdir(parents=True, exist_ok=True)
    if args.balancer == HAPROXY_NAME and not Path(HAPROXY).exists():
        print(f"--balancer haproxy needs Debian's HAProxy ({HAPROXY}): apt-get install haproxy")
        return 1
    pair: dict[str, Any] | None = None
    if args.lb_pair:
        why = "it pairs impala-lb only" if args.balancer != LB_NAME else cluster_pair.unavailable()
        if why:
            print(f"cannot start the cluster with --lb-pair: {why}")
            return 1
        args.net, args.bind = args.pair_net, "0.0.0.0"
    daemons = plan(
        run,
        impalads=args.impalads,
        port=args.port,
        bind=args.bind,
        net=args.net,
        balancer=args.balancer,
    )
    for d in daemons:
        if d.kind == "impalad":
            d.flags += args.impalad_flag
    write_flagfiles(run, daemons, args.net)
    desc = description(daemons, port=args.port, bind=args.bind, run=run)
    if args.lb_pair:
        daemons = cluster_pair.arrange(daemons, run, args.net)
        try:
            cluster_pair.write_configs(run, desc, args.net)
            pair = cluster_pair.record(cluster_pair.build_network(args.net), args.net)
        except (cluster_pair.PairSetupError, OSError, RuntimeError) as e:
            print(f"cannot start the cluster with --lb-pair: {e}")
            return 1
    else:
        (run / "haproxy.cfg").write_text(render_config(desc))
    impalads = [d for d in daemons if d.kind == "impalad"]
    metastore = run / "warehouse" / ".catalogd" / "metastore.duckdb"
    if not metastore.exists():
        print("generating sample data (sample.customers, sample.orders) ...", flush=True)
        load_sample_data(run, metastore)
    deadline = time.monotonic() + args.timeout
    for kind in ("statestored", "catalogd", "impalad", "agent", "impala-lb", "keepalived"):
        group = [d for d in daemons if d.kind == kind]
        if kind == "keepalived" and pair:
            # one after the other, the first (the higher priority) holding the address
            # before the second starts: both start BACKUP with nopreempt, and the first
            # to reach its master-down time wins, whatever the priorities
            if not _start_keepalived(run, group, daemons, args.port, pair, deadline):
                _stop_all(daemons, pair)
                return 1
            continue
        for d in group:
            spawn(d, run)
        # {} when there is no pair: a record an earlier cluster of this directory left
        # must not be kept (its namespaces are gone, or another pair's now)
        save(run, daemons, args.port, pair or {})
        for d in group:
            ok = _wait_ready(d, args.port, deadline)
            if not ok:
                print(f"{d.name} did not come up; see {run / 'logs' / (d.name + '.out')}")
                _stop_all(daemons, pair)
                return 1
    for kind in ("statestored", "catalogd"):
        members = [d for d in daemons if d.kind == kind]
        while members and not any(role(d) == "active" for d in members):
            if time.monotonic() > deadline:
                print(f"no {kind} became active; see {run / 'logs'}")
                _stop_all(daemons, pair)
                return 1
            time.sleep(0.1)
    host = "localhost" if args.bind in ("127.0.0.1", "0.0.0.0", "*") else args.bind
    shell, lb = _command("impala-shell"), _command("impala-lb")
    if pair:
        host = pair["vip"]
        shell = f"ip netns exec {pair['client_netns']} {shell}"
    print(
        f"""
impala-lb: a local Impala cluster is up ({run})
  {len(impalads)} impalads, {sum(d.kind == "statestored" for d in daemons)} statestoreds (HA), \
{sum(d.kind == "catalogd" for d in daemons)} catalogds (HA), {args.balancer} in front \
(Impala controller {"in-process" if args.balancer == LB_NAME else "beside it: impala-agent"}).

  {shell} -i {host}:{args.port}          # impala-shell, JDBC, ODBC (leastconn)
  {shell} -i {host}:{args.port + 1}          # Hue's port (source affinity)
  {shell} --protocol hs2-http -i {host}:{args.port + 2}
  {shell} --protocol beeswax -i {host}:{args.port + 3}
  stats page:   http://{host}:8404/stats
  admin socket: echo "show stat" | socat stdio unix:{run / "admin.sock"}

  {lb} cluster --dir {run} status | stop | kill <daemon> | start <daemon> | restart [impalad-N]
  {lb} cluster --dir {run} add impalad      # one more coordinator joins, no reload
""",
        flush=True,
    )
    if pair:
        print(
            f"  {cluster_pair.holder_line(pair)}\n  impala-lb-1 and impala-lb-2 each run "
            f"with a keepalived, in {', '.join(pair['balancers'].values())}: "
            f"'{lb} cluster --dir {run} kill impala-lb-1' moves the address\n",
            flush=True,
        )
    return 0


def _wait_ready(d: Daemon, port: int, deadline: float) -> bool:
    """Until ``d`` serves: a balancer listens on its port (and its Impala agent on its
    own), the agent beside HAProxy on its port, an Impala daemon answers /healthz."""
    if d.kind == "impala-lb":
        return wait_listening(d, d.host, port, deadline) and (
            d.name == HAPROXY_NAME or wait_listening(d, agent_host(d), AGENT_PORT, deadline)
        )
    if d.kind == "agent":
        return wait_listening(d, d.host, AGENT_PORT, deadline)
    return wait_healthy(d, deadline)


def _start_keepalived(
    run: Path,
    group: Sequence[Daemon],
    daemons: Sequence[Daemon],
    port: int,
    pair: dict[str, Any],
    deadline: float,
) -> bool:
    first = cluster_pair.BALANCERS[0][0]
    for i, d in enumerate(group):
        spawn(d, run)
        save(run, daemons, port, pair)
        if i:
            continue
        while cluster_pair.holders(pair) != [first]:
            if time.monotonic() > deadline or not alive(d.pid):
                print(f"{first} did not take the virtual IP; see {run / 'logs'}")
                return False
            time.sleep(0.1)
    return True


def cmd_status(args: argparse.Namespace) -> int:
    run: Path = args.dir.resolve()
    daemons, port = load(run)
    view = lb_view(run)
    print(f"{'daemon':<15} {'pid':>8}  {'process':<8} {'role':<8} {'balancer sees':<14} address")
    for d in daemons:
        running = alive(d.pid)
        seen = view.get(d.server_name, "-") if d.kind == "impalad" else "-"
        if d.kind == "impala-lb":
            where = f"{d.host}:{port}"
            if d.name == LB_NAME:
                where += f", agent-check on :{AGENT_PORT}"
        elif d.kind == "agent":
            where = f"{d.host}:{AGENT_PORT} (agent-check)"
        elif d.kind == "keepalived":
            where = f"{d.host} (VRRP)"
        else:
            where = f"{d.host} (web {d.web_port})"
        why = _agent_reason(run, d.server_name, daemons) if d.kind == "impalad" else ""
        print(
            f"{d.name:<15} {d.pid or '-':>8}  {'running' if running else 'stopped':<8} "
            f"{role(d) if running else '-':<8} {seen:<14} {where}" + (f"  ({why})" if why else "")
        )
    pair = load_pair(run)
    if pair:
        print(cluster_pair.holder_line(pair))
    return 0


def _agent_reason(run: Path, name: str, daemons: Sequence[Daemon]) -> str:
    """Why the Impala agent drains or holds back ``name`` (what follows its ``#``)."""
    try:
        reply = agent_command(run, name, timeout=1.0, daemons=daemons)
    except OSError:
        return ""
    return reply.partition("#")[2].strip()


def cmd_stop(args: argparse.Namespace) -> int:
    run: Path = args.dir.resolve()
    daemons, port = load(run)
    pair = load_pair(run)
    _stop_all(daemons, pair)
    for d in daemons:
        d.pid = None
    save(run, daemons, port, {})  # the namespaces are gone: no holder to ask about
    print(f"stopped the cluster in {run}" + (" and removed its namespaces" if pair else ""))
    return 0


def _find_daemon(daemons: Sequence[Daemon], name: str) -> Daemon:
    for d in daemons:
        if d.name == name:
            return d
    names = ", ".join(d.name for d in daemons)
    raise SystemExit(f"no daemon {name!r} in this cluster (daemons: {names})")


def cmd_kill(args: argparse.Namespace) -> int:
    run: Path = args.dir.resolve()
    daemons, _ = load(run)
    d = _find_daemon(daemons, args.daemon)
    if not alive(d.pid):
        print(f"{d.name} is not running")
        return 1
    assert d.pid is not None
    if d.kind == "keepalived":
        os.killpg(d.pid, signal.SIGKILL)  # its VRRP child too: the whole keepalived dies
    else:
        os.kill(d.pid, signal.SIGKILL)
    print(f"killed {d.name} (pid {d.pid})")
    return 0


def agent_command(
    run: Path, line: str, timeout: float = 3.0, *, daemons: Sequence[Daemon] | None = None
) -> str:
    """One line to the cluster's Impala agent (``drain NAME`` / ``ready NAME`` / a name);
    ``daemons`` saves reading the state again when the caller has it."""
    if daemons is None:
        daemons, _ = load(run)
    # the controller runs in impala-lb, or beside HAProxy as its own daemon; both listen
    # on the balancer's address
    agent = next(iter(agents(daemons)), None)
    if agent is None:
        raise OSError("this cluster runs no Impala agent")

    def ask() -> str:
        with socket.create_connection((agent_host(agent), AGENT_PORT), timeout=timeout) as s:
            s.sendall(line.encode() + b"\n")
            return s.recv(4096).decode(errors="replace").strip()

    return netns.call(agent.netns, ask)


def agents(daemons: Sequence[Daemon]) -> list[Daemon]:
    """The daemons that run an Impala controller (two in a pair: one per balancer)."""
    return [
        d
        for d in daemons
        if d.kind == "agent" or (d.kind == "impala-lb" and d.name != HAPROXY_NAME)
    ]


def agent_host(d: Daemon) -> str:
    """Where the Impala agent of balancer ``d`` listens: its address, or its own loopback
    in a pair (each balancer's controller is its own)."""
    return "127.0.0.1" if d.netns else d.host


def balancer_states(run: Path, server: str, sock: Path | None = None) -> set[str]:
    """The statuses the balancer (or the one at ``sock``) shows for ``server`` across its
    backends."""
    return set(lb_view(run, sock).get(server, "").split("/")) - {""}


def restart_coordinator(
    run: Path,
    name: str,
    *,
    views: Sequence[Callable[[str], set[str]]] = (),
    timeout: float = 60.0,
    say: Callable[[str], None] = print,
) -> bool:
    """A restart that fails no query: drain at the balancer(s) first (through the agent,
    so real HAProxy beside it drains too), then ``SIGRTMIN`` (Impala's graceful
    shutdown: sessions already on it finish), wait for the exit, start it again and
    wait until the balancer(s) give it clients again. ``views`` are more balancers'
    views of a server's states (the local one is always watched)."""
    deadline = time.monotonic() + timeout
    watch = [lambda s: balancer_states(run, s), *views]
    pair = load_pair(run)
    if pair:  # the other balancer's view too; each controller is told to drain
        other = cluster_pair.socket_path(run, 1)
        watch.append(lambda s: balancer_states(run, s, other))

    def until(what: str, ok: Callable[[], bool]) -> bool:
        while not ok():
            if time.monotonic() > deadline:
                say(f"{name}: timed out waiting for {what}")
                return False
            time.sleep(0.1)
        return True

    daemons, port = load(run)
    d = _find_daemon(daemons, name)
    server = d.server_name
    for agent in agents(daemons):
        if agent_command(run, f"drain {server}", daemons=[agent]) != "ok":
            say(f"the agent of {agent.name} does not know {name}")
            return False
    if not until("the drain", lambda: all(v(server) == {"DRAIN (agent)"} for v in watch)):
        return False
    say(f"{name}: drained; shutting down gracefully")
    if d.pid is not None and alive(d.pid):
        os.kill(d.pid, signal.SIGRTMIN)
    pid = d.pid
    if not until("the exit", lambda: not alive(pid)):
        return False
    spawn(d, run)
    save(run, daemons, port)
    if not wait_healthy(d, deadline):
        say(f"{name} did not become healthy")
        return False
    if not until("clients again", lambda: all(v(server) == {"UP"} for v in watch)):
        return False
    say(f"{name}: restarted (pid {d.pid}) and taking clients")
    return True


def cmd_restart(args: argparse.Namespace) -> int:
    run: Path = args.dir.resolve()
    names = args.daemon or [d.name for d in load(run)[0] if d.kind == "impalad"]
    for name in names:
        if not restart_coordinator(run, name, timeout=args.timeout):
            return 1
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    """``cluster add impalad``: one more impalad joins the running cluster; the Impala
    controller sees it in the membership and adds it to the balancer (no config edit,
    no reload)."""
    run: Path = args.dir.resolve()
    daemons, port = load(run)
    existing = [d for d in daemons if d.kind == "impalad"]
    if not existing:
        print("this cluster has no impalad to model the new one on")
        return 1
    index = max(int(d.name.rpartition("-")[2]) for d in existing) + 1
    if index > 9:
        print("a local cluster holds at most 9 impalads (.11-.19)")
        return 1
    net = existing[0].host.rpartition(".")[0]
    bins = Path(existing[0].argv[0]).parent
    new = impalad(index, net, run, bins, run / "flags")
    # the flags `cluster up --impalad-flag` gave the first impalads
    model = impalad(1, net, run, bins, run / "flags")
    new.flags += [a for a in existing[0].flags if a not in model.flags]
    write_flagfiles(run, [new], net)
    new.server = new.host  # how the controller names a coordinator it discovers
    daemons.insert(daemons.index(existing[-1]) + 1, new)
    spawn(new, run)
    save(run, daemons, port)
    if not wait_healthy(new, time.monotonic() + args.timeout):
        print(f"{new.name} did not become healthy; see {run / 'logs' / (new.name + '.out')}")
        return 1
    deadline = time.monotonic() + args.timeout
    while balancer_states(run, new.server) != {"UP"}:
        if time.monotonic() > deadline:
            print(f"{new.name} is up, but the balancer has not added it (see its log)")
            return 1
        time.sleep(0.1)
    print(f"{new.name} ({new.host}) joined; the balancer serves it as server {new.server}")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    run: Path = args.dir.resolve()
    daemons, port = load(run)
    d = _find_daemon(daemons, args.daemon)
    if alive(d.pid):
        print(f"{d.name} is already running (pid {d.pid})")
        return 1
    if d.netns and not netns.exists(d.netns):
        print(f"{d.name}'s namespace {d.netns} is gone ('cluster stop' removed it): up again")
        return 1
    spawn(d, run)
    save(run, daemons, port)
    ok = _wait_ready(d, port, time.monotonic() + args.timeout)
    print(f"started {d.name} (pid {d.pid})" if ok else f"{d.name} did not become healthy")
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="impala-lb cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("run"), help="run directory (./run)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the local cluster and the balancer")
    up.add_argument("--port", type=int, default=5000, help="the balancer's impala-shell port")
    up.add_argument("--bind", default="127.0.0.1", help="the balancer's listen address")
    up.add_argument("--impalads", type=int, default=3)
    up.add_argument(
        "--net",
        default="127.0.0",
        help="the /24 of loopback addresses the daemons use (.11-13 impalads, .21-22 "
        "statestoreds, .31-32 catalogds); change it to run two clusters side by side",
    )
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for health")
    up.add_argument(
        "--impalad-flag",
        action="append",
        default=[],
        metavar="--NAME=VALUE",
        help="one more flag for every impalad (repeatable), e.g. --shutdown_grace_period_s=5",
    )
    up.add_argument(
        "--balancer",
        choices=[LB_NAME, HAPROXY_NAME],
        default=LB_NAME,
        help="impala-lb (the Impala controller in-process), or Debian's HAProxy on the same "
        "rendered config with the controller beside it (impala-lb agent)",
    )
    up.add_argument(
        "--lb-pair",
        action="store_true",
        help="two balancers behind one virtual IP, each with keepalived, the cluster in "
        "network namespaces (root; see proxy/appliance/cluster_pair.py)",
    )
    up.add_argument(
        "--pair-net",
        default=netns.SUBNET,
        help="with --lb-pair: the /24 used inside the namespaces (default %(default)s)",
    )
    up.set_defaults(func=cmd_up)
    add = sub.add_parser("add", help="start one more impalad that joins the running cluster")
    add.add_argument("what", choices=["impalad"])
    add.add_argument("--timeout", type=float, default=60.0)
    add.set_defaults(func=cmd_add)
    sub.add_parser("status", help="every daemon, its role and health").set_defaults(func=cmd_status)
    sub.add_parser("stop", help="stop every daemon").set_defaults(func=cmd_stop)
    rs = sub.add_parser(
        "restart",
        help="restart impalads one at a time without failing a query (drain, graceful "
        "shutdown, start); all of them when none is named",
    )
    rs.add_argument("daemon", nargs="*")
    rs.add_argument("--timeout", type=float, default=180.0, help="seconds per impalad")
    rs.set_defaults(func=cmd_restart)
    for name, func, text in (
        ("kill", cmd_kill, "SIGKILL one daemon (try failover)"),
        ("start", cmd_start, "start one stopped daemon again"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("daemon")
        p.add_argument("--timeout", type=float, default=60.0)
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    return int(args.func(args))
