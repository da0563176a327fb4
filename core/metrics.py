"""The gateway's own Prometheus metrics (django-prometheus adds the request/database ones).

With several processes (gunicorn workers, task workers) prometheus_client's multiprocess mode is
used: `PROMETHEUS_MULTIPROC_DIR` is set in settings before prometheus_client is first imported, every
process writes its samples to files there, and /api/metrics (pod_gateway/views.py) adds them up. Counters
and histograms only: a gauge would need a multiprocess mode, and the one gauge we export
(`pod_images_pending_review`) is computed from the database at scrape time instead.
"""

from prometheus_client import Counter, Histogram

GENERATION_STARTED = Counter("pod_generation_started", "Generations started on a backend")
GENERATION_COMPLETED = Counter("pod_generation_completed", "Generations completed")
GENERATION_FAILED = Counter("pod_generation_failed", "Generations failed", ["error_type"])
GENERATION_DURATION = Histogram(
    "pod_generation_duration_seconds",
    "Wall time of a generation from start to finish",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, float("inf")),
)
IMAGES_APPROVED = Counter("pod_images_approved", "Images approved")
IMAGES_REJECTED = Counter("pod_images_rejected", "Images rejected")
PRODUCTS_PUBLISHED = Counter("pod_products_published", "Products published", ["platform"])
API_REQUESTS = Counter("pod_api_requests", "API requests", ["method", "endpoint", "status"])
API_REQUEST_DURATION = Histogram(
    "pod_api_request_duration_seconds",
    "API request latency",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf")),
)
WEBHOOK_DELIVERIES = Counter("pod_webhook_deliveries", "Webhook delivery attempts", ["event_type", "outcome"])
