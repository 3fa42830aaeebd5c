"""The real-time layer: Phoenix wire protocol, topics and their authorization, presence,
fan-out brokers (in-process, Redis) and replay."""
