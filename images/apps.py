from django.apps import AppConfig
from django.conf import settings
from PIL import Image as PILImage


class ImagesConfig(AppConfig):
    name = "images"
    verbose_name = "Review queue"

    def ready(self) -> None:
        # Every Image.open in the process (intake, backends) refuses bombs at our limit, not Pillow's.
        PILImage.MAX_IMAGE_PIXELS = settings.IMAGE_MAX_PIXELS
        # The review queue's depth, read from the database at each scrape and each StatsD report.
        from core import metrics  # noqa: PLC0415
        from images.selectors import image_pending_count  # noqa: PLC0415

        metrics.IMAGES_PENDING_REVIEW.read_with(image_pending_count)
