"""What the emulator's answers look like: Usergrid error bodies, OSS errors, gateway pages.

Easemob's REST layer is Apache Usergrid, so its errors carry `error`, `timestamp`, `duration`,
`exception` and `error_description`; download URLs are Aliyun OSS, whose errors are XML; the
gateway in front answers 502/503 with nginx's HTML page.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from auditor.partitions import format_instant

JSON_TYPE = "application/json;charset=UTF-8"

EXCEPTIONS = {
    "invalid_grant": "org.apache.usergrid.management.exceptions.InvalidGrantException",
    "json_parse": "com.fasterxml.jackson.core.JsonParseException",
    "illegal_argument": "java.lang.IllegalArgumentException",
    "unauthorized": "org.apache.shiro.authz.UnauthorizedException",
    "auth_bad_access_token": "org.apache.usergrid.rest.exceptions.SecurityException",
    "organization_application_not_found": (
        "org.apache.usergrid.rest.exceptions.OrganizationApplicationNotFoundException"
    ),
    "service_resource_not_found": (
        "org.apache.usergrid.services.exceptions.ServiceResourceNotFoundException"
    ),
    "storage_object_not_found": "com.easemob.chatmessage.exception.StorageObjectNotFoundException",
    "reach_limit": "com.easemob.ratelimit.exception.ReachLimitException",
    "web_application": "javax.ws.rs.WebApplicationException",
    "unsupported_service_operation": (
        "org.apache.usergrid.services.exceptions.UnsupportedServiceOperationException"
    ),
    "internal_server_error": "java.lang.RuntimeException",
    "request_entity_too_large": "javax.ws.rs.WebApplicationException",
}
GATEWAY_PAGES = {
    502: b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n",
    503: b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    b"<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
}
GARBAGE = (
    b"<html><head><title>Easemob</title></head><body><p>The service is busy, "
    b"please try again later.</p></body></html>"
)


@dataclass(slots=True)
class Response:
    """An answer to write; `cut_at` sends only that many body bytes, then drops the connection."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    cut_at: int | None = None


def usergrid_error(
    status: int, error: str, description: str, now_ms: int, started: float
) -> Response:
    """A Usergrid error body; `started` is the `perf_counter` at which the request arrived."""
    return json_response(
        status,
        {
            "error": error,
            "timestamp": now_ms,
            "duration": duration(started),
            "exception": EXCEPTIONS[error],
            "error_description": description,
        },
    )


def jackson_complaint(body: bytes) -> str:
    """Jackson's wording for a body that is not JSON, as Easemob passes it on."""
    text = body.decode("utf-8", "replace").lstrip()
    if not text:
        return "No content to map due to end-of-input"
    return (
        f"Unexpected character ('{text[0]}' (code {ord(text[0])})): expected a valid value "
        "(number, String, array, object, 'true', 'false' or 'null')"
    )


def duration(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def json_response(status: int, body: dict[str, Any]) -> Response:
    return Response(status, orjson.dumps(body))


def oss_error(status: int, code: str, message: str, now_ms: int) -> Response:
    request_id = uuid.uuid4().hex[:24].upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n"
        f"  <RequestId>{request_id}</RequestId>\n  <HostId>ebs-chatmessage.emulator</HostId>\n"
        f"  <ServerTime>{format_instant(now_ms)}</ServerTime>\n</Error>\n"
    )
    return Response(status, body.encode(), "application/xml")
