"""Flip a statestored's test-only fault switches: ``python -m backends.statestore.debug_action``.

Like Impala's ``SetStatestoreDebugAction`` RPC, honoured only by a statestored started
with ``--debug_actions=DISABLE_STATESTORE_NETWORK``. Each call sets all switches, so
calling it with no switch heals everything::

    python -m backends.statestore.debug_action --host=127.0.0.2 --port=24000 \\
        --cut_peer_link --isolate_subscribers=impalad@h:27000,impalad@h:27001
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from backends.common.flags import FlagError, FlagSet
from backends.common.rpc import RpcError, SetStatestoreDebugAction, call_blocking


def flag_set() -> FlagSet:
    fs = FlagSet("debug_action")
    fs.define("host", "localhost", "statestored host")
    fs.define("port", 24000, "statestored registration port (--state_store_port)")
    fs.define("disable_network", False, "refuse registrations, fail every heartbeat")
    fs.define("cut_peer_link", False, "fail the HA link to and from the peer")
    fs.define("isolate_subscribers", "", "comma-separated subscriber ids to cut off")
    return fs


def main(argv: Sequence[str] | None = None) -> int:
    try:
        flags = flag_set().parse(list(sys.argv[1:] if argv is None else argv))
        isolate = [s for s in flags.get_str("isolate_subscribers").split(",") if s]
        call_blocking(
            flags.get_str("host"),
            flags.get_int("port"),
            SetStatestoreDebugAction,
            disable_network=flags.get_bool("disable_network"),
            cut_peer_link=flags.get_bool("cut_peer_link"),
            isolate_subscribers=isolate,
        )
    except (FlagError, RpcError, OSError) as e:
        print(f"debug_action: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
