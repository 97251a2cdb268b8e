"""backorderctl: the operator command line over the services' gRPC APIs."""
