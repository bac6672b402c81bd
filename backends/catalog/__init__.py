"""catalogd: the shared metastore, its ``catalog-update`` topic and its active/standby pair."""
