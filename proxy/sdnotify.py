"""systemd's readiness protocol (sd_notify), without libsystemd.

With ``Type=notify`` systemd hands the service a datagram socket in
``$NOTIFY_SOCKET``; the service reports ``READY=1`` once its listeners are up,
``RELOADING=1`` + ``MONOTONIC_USEC`` when a reload starts and ``READY=1`` when it
is done, ``STOPPING=1`` on the way out, and ``WATCHDOG=1`` at least every
``$WATCHDOG_USEC``. Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping

from twisted.application import service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()


class Notifier:
    """Sends state lines to the socket named in the environment, if any."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is spelled with a leading '@'.
        self._address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_interval: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1_000_000 / 2

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` as one datagram; False when not under systemd or on error."""
        if not self._address:
            return False
        payload = "\n".join(lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(self._address)
                s.sendall(payload)
        except OSError as e:
            log.warn("sd_notify to {address!r} failed: {error}", address=self._address, error=e)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")


class WatchdogService(service.Service):
    """Pings systemd's watchdog from the event loop, so a wedged loop is noticed; and
    stops pinging once ``healthy()`` says the process no longer serves (the byte pump
    was lost), so that systemd restarts it rather than trust a half-dead balancer."""

    def __init__(
        self,
        notifier: Notifier,
        clock: IReactorTime,
        healthy: Callable[[], bool] = lambda: True,
    ) -> None:
        self._notifier = notifier
        self._healthy = healthy
        self._loop = LoopingCall(self._ping)
        self._loop.clock = clock

    def _ping(self) -> None:
        if self._healthy():
            self._notifier.watchdog()

    def startService(self) -> None:
        service.Service.startService(self)
        if self._notifier.watchdog_interval:
            self._loop.start(self._notifier.watchdog_interval, now=True)

    def stopService(self) -> None:
        if self._loop.running:
            self._loop.stop()
        service.Service.stopService(self)
