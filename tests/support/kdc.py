"""A throwaway MIT Kerberos realm on loopback, for tests (spec kerberos-in-tests.md 2b).

``Realm.start(tmpdir)`` creates a KDC database, starts ``krb5kdc`` on a free
127.0.0.1 port, and gives the environment every krb5 tool, server and client
must use (``KRB5_CONFIG``, ``KRB5_KDC_PROFILE``, ``KRB5CCNAME``,
``KRB5RCACHEDIR``). The krb5.conf sets ``rdns = false`` and
``dns_canonicalize_hostname = false`` so principals such as
``impala/lb.example.test`` work while everything connects by IP. ``stop()``
kills the KDC by PID. Nothing here touches /etc.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support.procs import free_port, stop_pid

REALM = "EXAMPLE.TEST"
KDB5_UTIL = "/usr/sbin/kdb5_util"
KADMIN_LOCAL = "/usr/sbin/kadmin.local"
KRB5KDC = "/usr/sbin/krb5kdc"


@dataclasses.dataclass
class Realm:
    """A running test realm: its directory, KDC port and process."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    realm: str = REALM

    @property
    def env(self) -> dict[str, str]:
        """The process environment for anything that speaks Kerberos in this realm."""
        env = dict(os.environ)
        env.update(
            KRB5_CONFIG=str(self.directory / "krb5.conf"),
            KRB5_KDC_PROFILE=str(self.directory / "kdc.conf"),
            KRB5CCNAME=f"FILE:{self.directory / 'ccache'}",
            KRB5RCACHEDIR=str(self.directory),
        )
        env.pop("KRB5_KTNAME", None)
        return env

    @classmethod
    def start(cls, directory: Path, attempts: int = 5) -> Realm:
        """Create the database and start krb5kdc, retrying on a port race."""
        directory.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _ in range(attempts):
            port = free_port()
            _write_configs(directory, port)
            realm = cls(directory, port, process=None)  # type: ignore[arg-type]
            if not (directory / "principal").exists():
                (directory / "kadm5.acl").touch()
                realm._run(KDB5_UTIL, "create", "-s", "-W", "-r", REALM, "-P", "masterpw")
            log = open(directory / "krb5kdc.out", "wb")  # noqa: SIM115 - owned by the process
            proc = subprocess.Popen(
                [KRB5KDC, "-n", "-r", REALM, "-P", str(directory / "kdc.pid")],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=realm.env,
            )
            log.close()
            realm.process = proc
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                if b"starting" in (directory / "krb5kdc.out").read_bytes():
                    return realm
                time.sleep(0.01)
            last_error = (directory / "krb5kdc.out").read_text(errors="replace")
            realm.stop()
        raise RuntimeError(f"krb5kdc did not start: {last_error}")

    def _run(self, *argv: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            list(argv), env=self.env, input=stdin, capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr or result.stdout}")
        return result.stdout

    def kadmin(self, query: str) -> str:
        return self._run(KADMIN_LOCAL, "-r", self.realm, "-q", query)

    def add_user(self, name: str, password: str) -> str:
        self.kadmin(f"addprinc -pw {password} {name}")
        return f"{name}@{self.realm}"

    def add_service(self, principal: str) -> str:
        """A service principal with a random key, e.g. ``impala/lb.example.test``."""
        self.kadmin(f"addprinc -randkey {principal}")
        return f"{principal}@{self.realm}"

    def export_keytab(self, path: Path, *principals: str) -> Path:
        """Write the principals' CURRENT keys to ``path`` (``-norandkey``: no kvno bump)."""
        self.kadmin(f"ktadd -norandkey -k {path} {' '.join(principals)}")
        return path

    def rekey(self, principal: str, keytab: Path) -> None:
        """Re-randomise a key into ``keytab``, bumping its kvno (the classic operator slip)."""
        self.kadmin(f"ktadd -k {keytab} {principal}")

    def kinit(self, principal: str, password: str, ccache: Path | None = None) -> dict[str, str]:
        """Get a TGT; returns the environment whose KRB5CCNAME holds it."""
        env = self.env
        if ccache is not None:
            env["KRB5CCNAME"] = f"FILE:{ccache}"
        result = subprocess.run(
            ["kinit", principal],
            env=env,
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kinit {principal} failed: {result.stderr}")
        return env

    def stop(self) -> None:
        if self.process is not None:
            stop_pid(self.process, signal.SIGTERM, timeout=10, kill_timeout=10)


def _write_configs(d: Path, port: int) -> None:
    (d / "krb5.conf").write_text(
        f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    udp_preference_limit = 1
    forwardable = true
[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}
[domain_realm]
    .example.test = {REALM}
    example.test = {REALM}
"""
    )
    (d / "kdc.conf").write_text(
        f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}
[realms]
    {REALM} = {{
        database_name = {d}/principal
        key_stash_file = {d}/stash
        acl_file = {d}/kadm5.acl
        kdc_listen = 127.0.0.1:{port}
        kdc_tcp_listen = 127.0.0.1:{port}
        max_life = 1d
        max_renewable_life = 7d
    }}
[logging]
    kdc = FILE:{d}/kdc.log
    default = FILE:{d}/other.log
"""
    )
