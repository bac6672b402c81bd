"""What Kerberos and TLS cost per connection, direct to impalad and through the balancer.

    .venv/bin/python -m bench.bench_auth [--count 200] [--seconds 20]

Starts a throwaway MIT KDC (alice's ticket, the ``impala/lb.example.test`` key), four
impalads on 127.0.0.111-114 (plain, Kerberos, TLS, Kerberos over TLS) and one
``impala-lb -f`` per impalad (plain TCP passthrough). For every (security, path) cell
it opens ``--count`` new connections one after another with impyla, each doing the
whole handshake (TCP, TLS, SASL GSSAPI with the cached service ticket) and
``OpenSession``, then closing, and reports the median and p90 connection set-up time.
Each cell is bounded by ``--count`` and ``--seconds``. Everything stops by PID.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.certs import make_ca
from tests.support.impalad import Balancer, Impalad
from tests.support.kdc import Realm

MODES = ("plain", "kerberos", "tls", "kerberos+tls")


def _cell(host: str, port: int, mode: str, ca: str, count: int, seconds: float) -> list[float]:
    from impala.dbapi import connect

    kwargs: dict[str, Any] = {}
    if "kerberos" in mode:
        kwargs.update(auth_mechanism="GSSAPI", krb_host="lb.example.test")
    if "tls" in mode:
        kwargs.update(use_ssl=True, ca_cert=ca)
    times: list[float] = []
    end = time.monotonic() + seconds
    for i in range(count + 5):
        if time.monotonic() > end:
            break
        t0 = time.perf_counter()
        conn = connect(host=host, port=port, timeout=20, **kwargs)
        try:
            cur = conn.cursor()  # the handshake and OpenSession happen here
            elapsed = time.perf_counter() - t0
            cur.close()
        finally:
            conn.close()
        if i >= 5:  # warm-up: the first connection fetches the service ticket
            times.append(elapsed)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--count", type=int, default=200, help="connections per cell")
    p.add_argument("--seconds", type=float, default=20.0, help="time bound per cell")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_auth_") as tmp_name:
        tmp = Path(tmp_name)
        realm = Realm.start(tmp / "realm")
        started: list[Any] = []
        try:
            realm.add_user("alice", "alicepw")
            realm.add_service("impala/lb.example.test")
            keytab = realm.export_keytab(tmp / "lb.keytab", "impala/lb.example.test")
            env = realm.kinit("alice", "alicepw")
            for key, value in env.items():
                if key.startswith("KRB5"):
                    os.environ[key] = value
            ca = make_ca(tmp / "ca")
            daemons: dict[str, Impalad] = {}
            for i, mode in enumerate(MODES):
                host = f"127.0.0.{111 + i}"
                flags: list[str] = []
                if "kerberos" in mode:
                    flags += [
                        "--principal=impala/lb.example.test@EXAMPLE.TEST",
                        f"--keytab_file={keytab}",
                    ]
                if "tls" in mode:
                    leaf = ca.issue(tmp / "certs", host, [host, "127.0.0.1"])
                    flags += [
                        f"--ssl_server_certificate={leaf.cert}",
                        f"--ssl_private_key={leaf.key}",
                    ]
                d = Impalad.start(tmp / mode, host=host, flags=flags, env=realm.env)
                started.append(d)
                daemons[mode] = d
            balancers = {}
            for mode, d in daemons.items():
                lb = Balancer.start(tmp / f"lb-{mode}", [(d.host, d.hs2_port, 0)], check=False)
                started.append(lb)
                balancers[mode] = lb
            print(f"connection set-up (TCP + TLS + SASL + OpenSession), {args.count} per cell, ms")
            print(
                f"{'security':<14} {'path':<9} {'n':>5} {'median':>8} {'p90':>8} {'+ vs plain':>11}"
            )
            base: dict[str, float] = {}
            for mode in MODES:
                for path in ("direct", "balancer"):
                    if path == "direct":
                        host, port = daemons[mode].host, daemons[mode].hs2_port
                    else:
                        host, port = "127.0.0.1", balancers[mode].port
                    times = sorted(_cell(host, port, mode, str(ca.cert), args.count, args.seconds))
                    median = statistics.median(times) * 1000
                    p90 = times[int(len(times) * 0.9)] * 1000
                    base.setdefault(path, median)
                    extra = median - base[path]
                    print(
                        f"{mode:<14} {path:<9} {len(times):>5} {median:>8.2f} {p90:>8.2f} "
                        f"{extra:>+11.2f}"
                    )
        finally:
            for proc in reversed(started):
                proc.stop()
            realm.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
