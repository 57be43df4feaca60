"""The pure pipeline: what an event does to a checkpoint's state, and what the state says
(alerts, metrics, the waits feed). Imports only the kernel (`bordermon`): no Faust, no Kafka
client, no wall clock in the decisions; the worker and offline history both run it."""
