from django.apps import AppConfig
from django.conf import settings
from PIL import Image as PILImage

from core.db.upkeep import counted_register, searched_register


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
        # Counts by status and the prompt indexes are kept by the database (core.db.upkeep).
        from images.models import Generation, Image  # noqa: PLC0415

        counted_register(Image, "status")
        counted_register(Generation, "status")
        searched_register(Image, "prompt")
        searched_register(Generation, "prompt")
