"""The appliance around the balancer: the local cluster, systemd installation."""
