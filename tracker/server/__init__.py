"""A team tracking server: a real `mlflow server` process and its private PostgreSQL.

`mlflow_server` builds the command line, starts the process bound to 127.0.0.1, waits until it
is healthy, and stops or kills it (the tests restart it under a running training); `postgres`
creates and runs a loopback-only PostgreSQL cluster with a generated password; `ports` finds
free loopback ports. `newsdesk server`, the fault tests and the benchmarks all use these.
"""
