"""The data workpulse moves: input events and records, per-video state, per-topic
aggregates, and one row model per ClickHouse table the worker writes.

Pure data and the rules that belong to it; imports nothing else of workpulse.
"""
