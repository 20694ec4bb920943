"""Home Assistant MQTT discovery: one device per camera, five entities each.

Topic ``<discovery_prefix>/<component>/<node>/<camera>_<object>/config`` (retained); every
config names the availability topic (``<prefix>/available``, also the last will) and a
``unique_id``, so entities survive renames in HA and go "unavailable" when vadmon does. The
event entity's ``event_types`` are the model's class names, which only the score stream
tells the alert process: its config is (re)published when they are first seen or change.
"""

from __future__ import annotations

import json
from typing import Any

from vadmon.alerts.mqtt_topics import OFFLINE, ONLINE, Topics
from vadmon.config.mqtt import node_id

# object → (component, the rest of its config); state topics are added per camera
ENTITIES: dict[str, tuple[str, dict[str, Any]]] = {
    "anomaly": (
        "binary_sensor",
        {"name": "Anomaly", "payload_on": "ON", "payload_off": "OFF", "device_class": "problem"},
    ),
    "event": ("event", {"name": "Anomaly event"}),
    "score": ("sensor", {"name": "Anomaly score", "state_class": "measurement"}),
    "snapshot": ("image", {"name": "Snapshot", "content_type": "image/jpeg"}),
    "state": (
        "sensor",
        {
            "name": "Camera state",
            "entity_category": "diagnostic",
            "value_template": "{{ value_json.state }}",
        },
    ),
}
# the topic key each component reads its state from
STATE_KEY = {"binary_sensor": "state_topic", "sensor": "state_topic", "event": "state_topic"}


def config_topic(discovery_prefix: str, prefix: str, camera: str, obj: str) -> str:
    component = ENTITIES[obj][0]
    return f"{discovery_prefix}/{component}/{node_id(prefix)}/{camera}_{obj}/config"


def camera_configs(
    discovery_prefix: str, topics: Topics, camera: str, class_names: list[str]
) -> dict[str, str]:
    """Discovery topic → retained JSON config, for one camera. Without class names yet the
    event entity is left out (HA refuses an event entity without ``event_types``)."""
    node = node_id(topics.prefix)
    device = {
        "identifiers": [f"{node}_{camera}"],
        "name": f"vadmon {camera}",
        "manufacturer": "vadmon",
        "model": "VadCLIP anomaly monitor",
    }
    out: dict[str, str] = {}
    for obj, (component, extra) in ENTITIES.items():
        if obj == "event" and not class_names:
            continue
        doc: dict[str, Any] = {
            **extra,
            "unique_id": f"{node}_{camera}_{obj}",
            "availability_topic": topics.available,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": device,
            "origin": {"name": "vadmon"},
        }
        if component == "image":
            doc["image_topic"] = topics.camera(camera, obj)
        else:
            doc[STATE_KEY[component]] = topics.camera(camera, obj)
        if obj == "state":
            doc["json_attributes_topic"] = topics.camera(camera, obj)
        if obj == "event":
            doc["event_types"] = list(class_names)
        out[config_topic(discovery_prefix, topics.prefix, camera, obj)] = json.dumps(
            doc, separators=(",", ":")
        )
    return out
