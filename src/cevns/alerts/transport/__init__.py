"""Transports: in-memory (in-process, or hosted on loopback by ``serve``: development) and Kafka (confluent-kafka)."""
from .base import (DEFAULT_ALERT_TOPIC, DEFAULT_OBS_TOPIC, BrokerURL, Record, Subscription, Transport,
                   TransportError, open_transport, parse_url)
from .memory import MemoryBroker, memory_broker, reset_memory_brokers

__all__ = ["DEFAULT_ALERT_TOPIC", "DEFAULT_OBS_TOPIC", "BrokerURL", "Record", "Subscription", "Transport",
           "TransportError", "open_transport", "parse_url", "MemoryBroker", "memory_broker",
           "reset_memory_brokers"]
