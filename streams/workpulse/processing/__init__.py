"""The pure stream logic: decode and validate messages against the contract, turn a batch
into rows, state and live aggregates (ingest), event-time windows, spike statistics.

No Faust, Kafka or ClickHouse imports; collaborators (the tagger, the state lookup,
what ClickHouse already holds, the clock) are passed in.
"""
