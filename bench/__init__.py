"""The benchmark of docs/spec.md §7: every row measured against the raw limits of the same servers.

`python -m bench [--quick|--full]` makes its own databases and RabbitMQ vhost on the local
servers, runs both services as real processes, measures each row and, in the same run, the
raw baselines (set-based SQL through asyncpg, publish-with-confirms through aio-pika, a trivial
grpc.aio call), then prints one table and writes bench/results/latest.json and a plot.
"""
