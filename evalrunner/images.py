"""Opening a dataset's image: one place, so a damaged file is always named, whichever part reads it."""

from PIL import Image, UnidentifiedImageError

from evalrunner.errors import UserError


def open_rgb(path: str) -> Image.Image:
    """The decoded image at `path` as RGB; a truncated or undecodable file is a UserError naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")  # convert() decodes every pixel, so truncation is found here, not later
    except FileNotFoundError:
        raise UserError(f"image not found: {path}; check data_root and the dataset's image settings") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        # PIL raises OSError for truncation, SyntaxError or ValueError for some broken headers
        raise UserError(f"image {path} cannot be decoded ({e}); re-download or replace the file") from None
