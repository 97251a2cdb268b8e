"""Planning (docs/spec.md §9): replenishment advice from demand history. `params` is what a
SKU's planning is tuned by. Nothing here imports the forecasting library at import time:
the gRPC server imports this package."""
