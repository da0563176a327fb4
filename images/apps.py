from django.apps import AppConfig
from django.conf import settings
from PIL import Image as PILImage


class ImagesConfig(AppConfig):
    name = "images"
    verbose_name = "Review queue"

    def ready(self) -> None:
        # Every Image.open in the process (intake, backends) refuses bombs at our limit, not Pillow's.
        PILImage.MAX_IMAGE_PIXELS = settings.IMAGE_MAX_PIXELS
