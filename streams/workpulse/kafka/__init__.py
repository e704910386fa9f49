"""Kafka helpers: one mapping of the connection settings for every client (Faust,
aiokafka, kafka-python), topic administration, and the producer of `workpulse produce`."""
