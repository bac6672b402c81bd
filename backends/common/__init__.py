"""What the three daemons share: :mod:`~backends.common.daemon` (every ``main()``:
flags, logging, start, stop), :mod:`~backends.common.flags` (gflags parsing over
Impala's registry ``impala_flags.tsv``), :mod:`~backends.common.logfiles` (glog files
and retention), :mod:`~backends.common.web` (the debug web servers),
:mod:`~backends.common.rpc` (AMP between our daemons), :mod:`~backends.common.subscriber`
(the statestore subscriber) and :mod:`~backends.common.keytab` (reading keytabs)."""
