"""The live worker: Faust and aiokafka around the domain, the commit protocol that makes a
batch's outputs, state and offsets durable together, the changelog, Alertmanager and HTTP."""
