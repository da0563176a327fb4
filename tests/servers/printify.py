"""A Printify API stand-in: a real threaded HTTP server on 127.0.0.1 speaking Printify's v1 JSON.

Implements shops, uploads, product create/list/publish (with mockup images in the create answer),
publishing_succeeded/failed of custom-integration shops and the catalog (blueprints, providers,
variants), validates requests as Printify does (auth, User-Agent, missing fields, unknown blueprint/
provider/variant/upload → 400 with Printify's error body) and can inject faults per route: a status
with headers (429 + Retry-After, 500), a delay longer than the client's timeout, a dropped connection,
or a hook that runs before the answer (to kill a worker mid-request). A fault with `after=True` strikes
once the request has been carried out — the product is made, the publish done — as when a gateway in
front of Printify answers 502, or the answer is lost. Every call is counted by route.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
import urllib.request
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers import StandInServer

API_KEY = "test-printify-key"
SHOP_ID = 4321

BLUEPRINTS = {
    77: {
        "id": 77,
        "title": "Unisex Heavy Blend™ Hooded Sweatshirt",
        "description": "Gildan 18500",
        "brand": "Gildan",
        "model": "18500",
        "images": [],
        "providers": {
            29: {
                "title": "Monster Digital",
                "location": {"address1": "", "city": "Phoenix", "country": "US"},
                "variants": {
                    32918: ("Black / S", "Black", "S"),
                    32919: ("Black / M", "Black", "M"),
                    32920: ("Black / L", "Black", "L"),
                },
            },
        },
    },
    6: {
        "id": 6,
        "title": "Unisex Heavy Cotton Tee",
        "description": "Gildan 5000",
        "brand": "Gildan",
        "model": "5000",
        "images": [],
        "providers": {
            99: {
                "title": "Printify Choice",
                "location": {"address1": "", "city": "", "country": "US"},
                "variants": {
                    12100: ("White / M", "White", "M"),
                    12101: ("White / L", "White", "L"),
                    12102: ("White / 2XL", "White", "2XL"),
                    12103: ("Black / M", "Black", "M"),
                },
            },
        },
    },
    68: {
        "id": 68,
        "title": "Mug 11oz",
        "description": "White ceramic mug",
        "brand": "Generic brand",
        "model": "Mug 11oz",
        "images": [],
        "providers": {
            1: {
                "title": "SPOKE Custom Products",
                "location": {"address1": "", "city": "Richmond", "country": "US"},
                "variants": {33719: ("11oz", "White", "11oz")},
                # A mug's wrap-around print area: wide and short.
                "placeholder": {"position": "front", "width": 2475, "height": 1155},
            },
        },
    },
}
# The print area of a variant unless its provider names another (Printify's placeholders).
PLACEHOLDER = {"position": "front", "width": 4500, "height": 5400}

ROUTES = [
    ("GET", re.compile(r"^/v1/shops\.json$"), "shops"),
    ("POST", re.compile(r"^/v1/uploads/images\.json$"), "upload"),
    ("GET", re.compile(r"^/v1/uploads\.json$"), "uploads"),
    ("GET", re.compile(r"^/v1/catalog/blueprints\.json$"), "blueprints"),
    ("GET", re.compile(r"^/v1/catalog/blueprints/(?P<bp>\d+)/print_providers\.json$"), "providers"),
    ("GET", re.compile(r"^/v1/catalog/blueprints/(?P<bp>\d+)/print_providers/(?P<pp>\d+)/variants\.json$"), "variants"),
    ("POST", re.compile(r"^/v1/shops/(?P<shop>\d+)/products\.json$"), "create"),
    ("GET", re.compile(r"^/v1/shops/(?P<shop>\d+)/products\.json$"), "list"),
    ("POST", re.compile(r"^/v1/shops/(?P<shop>\d+)/products/(?P<pid>\w+)/publish\.json$"), "publish"),
    ("POST", re.compile(r"^/v1/shops/(?P<shop>\d+)/products/(?P<pid>\w+)/publishing_succeeded\.json$"),
     "publishing_succeeded"),
    ("POST", re.compile(r"^/v1/shops/(?P<shop>\d+)/products/(?P<pid>\w+)/publishing_failed\.json$"),
     "publishing_failed"),
]


@dataclass
class Fault:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    delay: float = 0.0
    drop: bool = False
    hook: Callable[[], None] | None = None
    # Carry the request out first, then answer with the fault (or drop the connection).
    after: bool = False
    # Wait `delay` first, then carry the request out and answer: a client that timed out meanwhile has
    # given up on a request the server still completes.
    late: bool = False


class ApiError(Exception):
    def __init__(self, status: int, message: str, reason: str = "", code: int = 8150) -> None:
        self.status = status
        self.body: dict[str, Any] = {"status": "error", "code": code, "message": message}
        if reason:
            self.body["errors"] = {"reason": reason, "code": code}


class PrintifyStandIn:
    """Start with `start()`; `url` is the API base (…/v1). State and counters are inspectable."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.uploads: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        # Lists run newest first; set to list oldest first instead (the API does not promise an order).
        self.oldest_first = False
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                stand_in._handle(self, "GET")

            def do_POST(self) -> None:
                stand_in._handle(self, "POST")

        self.server = StandInServer(Handler)

    @property
    def url(self) -> str:
        return f"{self.server.url}/v1"

    def start(self) -> PrintifyStandIn:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def inject(self, route: str, *faults: Fault) -> None:
        """Queue faults for the next calls of `route` (shops, upload, create, publish, variants, …)."""
        with self.lock:
            self.faults[route].extend(faults)

    # --- Request handling --------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        found = next(
            ((name, match) for route_method, pattern, name in ROUTES
             if route_method == method and (match := pattern.match(path))),
            None,
        )
        if found is None:
            return self._send(handler, 404, {"status": "error", "code": 404, "message": "Not found"})
        name, match = found
        with self.lock:
            self.calls[name] += 1
            fault = self.faults[name].popleft() if self.faults[name] else None
        if fault is not None and fault.late:
            time.sleep(fault.delay)
            fault = None
        if fault is not None and not fault.after and self._strike(handler, fault):
            return
        try:
            status, answer = self._answer(handler, method, name, match, raw)
        except json.JSONDecodeError:
            status, answer = 400, {"status": "error", "code": 400, "message": "Malformed JSON"}
        except ApiError as exc:
            status, answer = exc.status, exc.body
        if fault is not None and fault.after and self._strike(handler, fault):
            return
        self._send(handler, status, answer)

    def _strike(self, handler: BaseHTTPRequestHandler, fault: Fault) -> bool:
        """Apply a fault; True when it answered (or dropped) instead of the real answer."""
        if fault.hook:
            fault.hook()
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            handler.close_connection = True
            handler.connection.close()
            return True
        if fault.status:
            body = fault.body or {"status": "error", "code": fault.status, "message": f"Injected {fault.status}"}
            self._send(handler, fault.status, body, fault.headers)
            return True
        return False

    def _answer(self, handler: BaseHTTPRequestHandler, method: str, name: str, match: re.Match, raw: bytes
                ) -> tuple[int, Any]:
        if handler.headers.get("Authorization") != f"Bearer {API_KEY}":
            raise ApiError(401, "Unauthenticated.", code=401)
        if not handler.headers.get("User-Agent"):
            raise ApiError(400, "User-Agent header is required.", code=400)
        body = json.loads(raw or b"{}") if method == "POST" else {}
        if not isinstance(body, dict):
            raise ApiError(400, "Validation failed.", "The request body must be a JSON object")
        if method == "GET":
            body = {key: values[-1] for key, values in parse_qs(urlsplit(handler.path).query).items()}
        with self.lock:
            self.requests.append((name, body))
        return getattr(self, f"_{name}")(body, **match.groupdict())

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    # --- Endpoints -----------------------------------------------------------------------------------

    def _shops(self, body: dict) -> tuple[int, Any]:
        return 200, [{"id": SHOP_ID, "title": "Stand-in Shop", "sales_channel": "custom_integration"}]

    def _blueprints(self, body: dict) -> tuple[int, Any]:
        return 200, [{k: v for k, v in bp.items() if k != "providers"} for bp in BLUEPRINTS.values()]

    def _blueprint(self, bp: str) -> dict[str, Any]:
        blueprint = BLUEPRINTS.get(int(bp))
        if blueprint is None:
            raise ApiError(404, "Blueprint not found.", code=8204)
        return blueprint

    def _providers(self, body: dict, bp: str) -> tuple[int, Any]:
        providers = self._blueprint(bp)["providers"]
        return 200, [{"id": pid, "title": p["title"], "location": p["location"]} for pid, p in providers.items()]

    def _variants(self, body: dict, bp: str, pp: str) -> tuple[int, Any]:
        provider = self._blueprint(bp)["providers"].get(int(pp))
        if provider is None:
            raise ApiError(404, "Print provider not found.", code=8205)
        variants = [
            {"id": vid, "title": title, "options": {"color": color, "size": size},
             "placeholders": [dict(provider.get("placeholder", PLACEHOLDER))]}
            for vid, (title, color, size) in provider["variants"].items()
        ]
        return 200, {"id": int(pp), "title": provider["title"], "variants": variants}

    def _upload(self, body: dict) -> tuple[int, Any]:
        file_name = body.get("file_name")
        if not file_name:
            raise ApiError(400, "Validation failed.", "file_name: The file name field is required.")
        if bool(body.get("url")) == bool(body.get("contents")):
            raise ApiError(400, "Validation failed.", "Either url or contents is required.")
        if body.get("url"):
            # Printify fetches the file itself; so does the stand-in (from loopback only).
            if not body["url"].startswith("http://127.0.0.1:") and not body["url"].startswith("http://localhost:"):
                raise ApiError(400, "Validation failed.", "url: only loopback URLs in the stand-in")
            try:
                with urllib.request.urlopen(body["url"], timeout=10) as response:  # noqa: S310
                    data = response.read()
            except OSError as exc:
                raise ApiError(400, "Validation failed.", f"url: could not download the image ({exc})") from None
        else:
            try:
                data = base64.b64decode(body["contents"], validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, "Validation failed.", "contents: must be base64") from None
        if not data.startswith(b"\x89PNG") and not data.startswith(b"\xff\xd8"):
            raise ApiError(400, "Validation failed.", "The file is not a PNG or JPEG image.")
        upload_id = secrets.token_hex(12)
        upload = {"id": upload_id, "file_name": file_name, "height": 0, "width": 0, "size": len(data),
                  "mime_type": "image/png" if data.startswith(b"\x89PNG") else "image/jpeg",
                  "preview_url": f"https://images.example.invalid/{upload_id}.png",
                  "upload_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
        with self.lock:
            self.uploads[upload_id] = upload
        return 200, upload

    def _create(self, body: dict, shop: str) -> tuple[int, Any]:
        if int(shop) != SHOP_ID:
            raise ApiError(404, "Shop not found.", code=8200)
        for name in ("title", "blueprint_id", "print_provider_id", "variants", "print_areas"):
            if body.get(name) in (None, "", []):
                raise ApiError(400, "Validation failed.", f"{name}: The {name} field is required.")
        blueprint = BLUEPRINTS.get(body["blueprint_id"]) if isinstance(body["blueprint_id"], int) else None
        if blueprint is None:
            raise ApiError(400, "Validation failed.", f"blueprint_id: Blueprint {body['blueprint_id']} does not exist.")
        provider = blueprint["providers"].get(body["print_provider_id"])
        if provider is None:
            raise ApiError(400, "Validation failed.",
                           f"print_provider_id: Print provider {body['print_provider_id']} is not available "
                           f"for blueprint {body['blueprint_id']}.")
        for n, variant in enumerate(body["variants"]):
            if variant.get("id") not in provider["variants"]:
                raise ApiError(400, "Validation failed.", f"variants.{n}.id: Variant {variant.get('id')} is not "
                               "available for this blueprint and print provider.")
            if not isinstance(variant.get("price"), int) or variant["price"] <= 0:
                raise ApiError(400, "Validation failed.", f"variants.{n}.price: The price must be a positive integer.")
        for area in body["print_areas"]:
            for placeholder in area.get("placeholders", []):
                for image in placeholder.get("images", []):
                    if image.get("id") not in self.uploads:
                        raise ApiError(400, "Validation failed.", f"Image {image.get('id')} does not exist.")
                    if not isinstance(image.get("angle"), int):
                        raise ApiError(400, "Validation failed.", "The image angle must be an integer.")
        product_id = secrets.token_hex(12)
        variant_ids = [variant["id"] for variant in body["variants"]]
        # Printify's mockups: a picture per camera position, the first the default one.
        images = [
            {"src": f"https://images-api.printify.com/mockup/{product_id}/{variant_ids[0]}/{n}/mockup.jpg",
             "variant_ids": variant_ids, "position": position, "is_default": n == 0, "is_selected_for_publishing": True}
            for n, position in enumerate(("front", "other"))
        ]
        product = {
            "id": product_id, "title": body["title"], "description": body.get("description", ""),
            "tags": body.get("tags", []), "options": [], "variants": body["variants"], "images": images,
            "created_at": time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime()), "visible": True, "is_locked": False,
            "blueprint_id": body["blueprint_id"], "print_provider_id": body["print_provider_id"],
            "user_id": 1, "shop_id": SHOP_ID, "print_areas": body["print_areas"], "print_details": [],
            "sales_channel_properties": [], "published": False,
        }
        with self.lock:
            self.products[product_id] = product
        return 200, product

    def _list(self, body: dict, shop: str) -> tuple[int, Any]:
        """Printify's paginated product list, newest first (`limit` at most 50)."""
        if int(shop) != SHOP_ID:
            raise ApiError(404, "Shop not found.", code=8200)
        with self.lock:
            items = list(self.products.values())
        return self._page(body, items, limit_max=50)

    def _uploads(self, body: dict) -> tuple[int, Any]:
        """Printify's paginated list of uploaded files, newest first (`limit` at most 100)."""
        with self.lock:
            items = list(self.uploads.values())
        return self._page(body, items, limit_max=100)

    def _page(self, body: dict, oldest_first: list[dict[str, Any]], *, limit_max: int) -> tuple[int, Any]:
        ordered = oldest_first if self.oldest_first else list(reversed(oldest_first))
        try:
            page, limit = int(body.get("page", 1)), int(body.get("limit", 10))
        except ValueError:
            raise ApiError(400, "Validation failed.", "page and limit must be numbers") from None
        if not 1 <= limit <= limit_max or page < 1:
            raise ApiError(400, "Validation failed.", f"limit: The limit may not be greater than {limit_max}.")
        last_page = max(1, -(-len(ordered) // limit))
        data = ordered[(page - 1) * limit: page * limit]
        return 200, {"current_page": page, "data": data, "from": (page - 1) * limit + 1, "last_page": last_page,
                     "per_page": limit, "to": (page - 1) * limit + len(data), "total": len(ordered),
                     "next_page_url": f"/?page={page + 1}" if page < last_page else None}

    def _publish(self, body: dict, shop: str, pid: str) -> tuple[int, Any]:
        with self.lock:
            product = self.products.get(pid)
            if int(shop) != SHOP_ID or product is None:
                raise ApiError(404, "Product not found.", code=8201)
            product["published"] = True
            product["publish_count"] = product.get("publish_count", 0) + 1
        return 200, {}

    def _publishing_succeeded(self, body: dict, shop: str, pid: str) -> tuple[int, Any]:
        """A custom-integration shop says where the product is listed (`external{id, handle}`)."""
        external = body.get("external")
        if not isinstance(external, dict) or not external.get("id") or not external.get("handle"):
            raise ApiError(400, "Validation failed.", "external: id and handle are required.")
        with self.lock:
            product = self.products.get(pid)
            if int(shop) != SHOP_ID or product is None:
                raise ApiError(404, "Product not found.", code=8201)
            product["external"] = external
            product["is_locked"] = False
        return 200, {}

    def _publishing_failed(self, body: dict, shop: str, pid: str) -> tuple[int, Any]:
        if not isinstance(body.get("reason"), str) or not body["reason"]:
            raise ApiError(400, "Validation failed.", "reason: The reason field is required.")
        with self.lock:
            product = self.products.get(pid)
            if int(shop) != SHOP_ID or product is None:
                raise ApiError(404, "Product not found.", code=8201)
            product["publishing_failed"] = body["reason"]
            product["is_locked"] = False
        return 200, {}
