"""Where the worker's rows go: the ClickHouse sink and its retry policy."""
