"""The wire contract between the server, the station client and the browser.

``messages`` (one frozen model per message type), ``codec`` (the only parser), ``errors`` (the
error taxonomy), ``enums`` and ``reasons`` (the vocabulary), ``limits`` (sizes, heartbeat, rate
limits) and ``client`` (the Python WebSocket client). Imports nothing of ours
(ARCHITECTURE §3); docs/signaling.md documents the protocol.
"""
