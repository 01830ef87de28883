"""The CloudEvents 1.0 event of one notification, in the structured JSON mode (the whole event is the body).

Plain JSON following the specification (https://github.com/cloudevents/spec, v1.0.2: the required attributes id,
source, specversion and type, plus time, subject and datacontenttype), not the `cloudevents` SDK: the operator
needs only to write one fixed shape, which a dict does, and its image stays without one more dependency to pin.
"""

from __future__ import annotations

import json
from typing import Any

from boltz_operator.api.notify import NotificationRecord

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
TOP_IN_EVENT = 5  # a campaign's status holds up to 10 top designs, a screen's topK ligands: an event stays small


def cloud_event(body: dict, plural: str, record: NotificationRecord) -> dict[str, Any]:
    """The event announcing `record` about the object `body` (its current status supplies message and results).

    data: kind, namespace, name, uid, phase, message, and for a finished run its results (URIs, headline scores;
    a campaign's top designs and a screen's top ligands cut to TOP_IN_EVENT).
    """
    meta, status = body["metadata"], body.get("status") or {}
    api_version = body.get("apiVersion", "boltz-operator.io/v1alpha1")
    data: dict[str, Any] = {
        "kind": body.get("kind"),
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "phase": record.phase,
        "message": status.get("message"),
    }
    results = status.get("results")
    if results and record.phase == status.get("phase"):  # results belong to the phase the run is in now
        results = dict(results)
        for top in ("topDesigns", "topLigands"):
            if top in results:
                results[top] = results[top][:TOP_IN_EVENT]
        data["results"] = results
    return {
        "specversion": SPEC_VERSION,
        "id": record.id,
        "source": f"/apis/{api_version}/namespaces/{meta['namespace']}/{plural}/{meta['name']}",
        "type": record.type,
        "subject": meta["name"],
        "time": record.time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }


def encode(event: dict[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON (what the signature covers, byte for byte)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
