"""The Faust worker: the app (topics, tables, thin agents), the steps each agent runs
per batch, the durable-offset replay guard, and the runtime that assembles and runs it."""
