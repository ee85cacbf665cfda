"""Keyword arguments shared by every aiokafka client (producer, consumer, admin)."""

from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context

from ingester.settings import KafkaSecurity, Settings

__all__ = ["client_kwargs"]


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers, client id and the TLS/SASL settings from ``settings``."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"sportrix-ingester-{settings.instance_id}",
        "security_protocol": settings.kafka_security_protocol.value,
    }
    protocol = settings.kafka_security_protocol
    if protocol in (KafkaSecurity.SSL, KafkaSecurity.SASL_SSL):
        context = create_ssl_context(
            cafile=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None,
            certfile=str(settings.kafka_ssl_cert_file) if settings.kafka_ssl_cert_file else None,
            keyfile=str(settings.kafka_ssl_key_file) if settings.kafka_ssl_key_file else None,
        )
        context.check_hostname = settings.kafka_ssl_check_hostname
        kwargs["ssl_context"] = context
    if protocol in (KafkaSecurity.SASL_PLAINTEXT, KafkaSecurity.SASL_SSL):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = settings.read_sasl_password()
    return kwargs
