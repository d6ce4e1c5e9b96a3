"""Line integration: results to the PLC and the plant (MQTT, central PostgreSQL, OPC UA, Modbus TCP),
part triggers, and delivery through outages (the local results log is the outbox).

Layering: uses ``station.live``, ``station.core`` and ``station.acquisition``; never the app, GUI or CLI.
"""
