"""Webhook notifications (spec.notify): CloudEvents 1.0 JSON POSTed when a run changes phase, signed, retried.

records.py: which events a run owes (status.notifications); cloudevent.py: the event; signing.py: the HMAC header;
policy.py: which hosts may be reached; sender.py: one delivery with retries; notifier.py: the queue, its thread,
and writing the outcome back (status, Events, metrics). Reconcile passes never wait on any of it.
"""
