"""From the config model to check settings: defaults, ports, timeouts and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from haconfig import model, parse_text
from proxy.checks import (
    AgentSettings,
    CheckConfigError,
    CheckSettings,
    ConnectOnly,
    HttpCheckDialogue,
    ProbeTimeouts,
    TcpCheckDialogue,
    settings_for,
)


def backend(text: str) -> model.Proxy:
    config = parse_text("defaults\n    mode tcp\n" + text)
    proxy = config.backends[0]
    return proxy


def only(text: str) -> tuple[CheckSettings | None, AgentSettings | None]:
    proxy = backend(text)
    return settings_for(proxy, proxy.servers[0])


def test_defaults_inter_rise_fall() -> None:
    """A bare ``check`` uses inter 2s, rise 2, fall 3, the traffic port and a TCP connect."""
    check, agent = only("backend be\n    server a 127.0.0.1:21050 check\n")
    assert agent is None
    assert check is not None
    assert (check.inter, check.rise, check.fall, check.port) == (2000, 2, 3, 21050)
    assert isinstance(check.make_dialogue(), ConnectOnly)
    assert check.timeouts == ProbeTimeouts(2.0, None)


def test_check_port_and_httpchk() -> None:
    """``port 25000`` with ``option httpchk`` checks the web port with an HTTP dialogue."""
    check, _ = only(
        "backend be\n    option httpchk GET /healthz\n"
        "    server a 127.0.0.1:21050 check port 25000 inter 5s fastinter 1s downinter 3s\n"
    )
    assert check is not None
    assert check.port == 25000
    assert (check.fastinter, check.downinter) == (1000, 3000)
    assert isinstance(check.make_dialogue(), HttpCheckDialogue)


def test_timeout_check_splits_connect_and_read() -> None:
    """With ``timeout check`` the connect part is min(timeout connect, inter)."""
    check, _ = only(
        "backend be\n    timeout connect 3s\n    timeout check 500ms\n"
        "    server a 127.0.0.1:1 check inter 1s\n"
    )
    assert check is not None
    assert check.timeouts == ProbeTimeouts(1.0, 0.5)


def test_last_of_httpchk_and_tcp_check_wins() -> None:
    """``option httpchk`` then ``option tcp-check``: the tcp-check rules run."""
    check, _ = only(
        "backend be\n    option httpchk\n    option tcp-check\n    tcp-check send PING\n"
        "    tcp-check expect string PONG\n    server a 127.0.0.1:1 check\n"
    )
    assert check is not None
    assert isinstance(check.make_dialogue(), TcpCheckDialogue)


def test_log_health_checks_and_shutdown_sessions() -> None:
    """``option log-health-checks`` and ``on-marked-down shutdown-sessions`` reach the settings."""
    check, _ = only(
        "backend be\n    option log-health-checks\n"
        "    server a 127.0.0.1:1 check on-marked-down shutdown-sessions\n"
    )
    assert check is not None
    assert check.log_health_checks and check.shutdown_on_down


def test_agent_settings() -> None:
    """``agent-check agent-port`` gives agent settings with agent-inter 2s by default."""
    _, agent = only("backend be\n    server a 127.0.0.1:1 agent-check agent-port 9999\n")
    assert agent is not None
    assert (agent.port, agent.inter, agent.host) == (9999, 2000, "127.0.0.1")


def test_check_without_any_port_refused() -> None:
    """A port-less server with ``check`` and no ``port`` is refused with HAProxy's words."""
    proxy = model.Proxy(
        kind=model.SectionKind.BACKEND,
        name="be",
        servers=(model.Server("a", "127.0.0.1", None, params=model.ServerParams(check=True)),),
    )
    with pytest.raises(CheckConfigError, match="has neither service port nor check port"):
        settings_for(proxy, proxy.servers[0])


def test_check_ssl_needs_verify_none_or_ca_file() -> None:
    """check-ssl with default verify and no CA file is refused."""
    params = model.ServerParams(check=True, check_ssl=True)
    proxy = model.Proxy(
        kind=model.SectionKind.BACKEND,
        name="be",
        servers=(model.Server("a", "127.0.0.1", 1, params=params),),
    )
    with pytest.raises(CheckConfigError, match="no CA file specified"):
        settings_for(proxy, proxy.servers[0])


def test_missing_ca_file_refused(tmp_path: Path) -> None:
    """A CA file that cannot be read is a clear error, not a crash."""
    params = model.ServerParams(check=True, check_ssl=True, ca_file=str(tmp_path / "none.pem"))
    proxy = model.Proxy(
        kind=model.SectionKind.BACKEND,
        name="be",
        servers=(model.Server("a", "127.0.0.1", 1, params=params),),
    )
    with pytest.raises(CheckConfigError, match="unable to load CA file"):
        settings_for(proxy, proxy.servers[0])


def test_agent_without_port_refused() -> None:
    """agent-check without agent-port is refused with HAProxy's words."""
    params = model.ServerParams(agent_check=True)
    proxy = model.Proxy(
        kind=model.SectionKind.BACKEND,
        name="be",
        servers=(model.Server("a", "127.0.0.1", 1, params=params),),
    )
    with pytest.raises(CheckConfigError, match="does not have agent port"):
        settings_for(proxy, proxy.servers[0])
