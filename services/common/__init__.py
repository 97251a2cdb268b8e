"""What both services share at the edges: settings, pools, migrations, outbox, gRPC bootstrap."""
