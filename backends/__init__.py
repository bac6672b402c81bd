"""The Impala daemons the balancer fronts: :mod:`backends.impalad`,
:mod:`backends.statestore` and :mod:`backends.catalog` (each an HA-capable daemon with
Impala's flag names), on what they share in :mod:`backends.common`."""
