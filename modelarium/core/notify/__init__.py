"""Notifications: an outbox of chat messages (edited in place) and signed webhooks."""

from modelarium.core.notify.sender import DeliveryError, MessageSender
from modelarium.core.notify.service import DeliveryReport, NotifyService

__all__ = ["DeliveryError", "DeliveryReport", "MessageSender", "NotifyService"]
