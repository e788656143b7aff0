"""Labels drawn into RGB images without a font library: a 3 x 5 pixel font (digits, letters, a few symbols),
scaled by whole pixels. Enough to name the rows and columns of a picture nmkit writes (attack's grid.png)."""

from __future__ import annotations

import numpy as np

# each glyph: five rows of three bits, left pixel = 4, middle = 2, right = 1
_GLYPHS = {
    "0": "75557", "1": "26227", "2": "71747", "3": "71317", "4": "55711", "5": "74717", "6": "74757", "7": "71122",
    "8": "75757", "9": "75717", "a": "25755", "b": "65656", "c": "34443", "d": "65556", "e": "74647", "f": "74644",
    "g": "34553", "h": "55755", "i": "72227", "j": "11152", "k": "55655", "l": "44447", "m": "57755", "n": "65555",
    "o": "25552", "p": "65644", "q": "25563", "r": "65655", "s": "34216", "t": "72222", "u": "55557", "v": "55552",
    "w": "55775", "x": "55255", "y": "55222", "z": "71247", ">": "42124", ":": "02020", ";": "02024", "-": "00700",
    ".": "00002", ",": "00024", "/": "11244", "=": "07070", "(": "24442", ")": "42224", " ": "00000", "?": "71302",
    "%": "41247",
}
GLYPH_WIDTH, GLYPH_HEIGHT = 3, 5


def text_width(text: str, scale: int) -> int:
    """Pixels the text spans: 3 columns per glyph plus 1 between glyphs, times ``scale``."""
    return max(0, (GLYPH_WIDTH + 1) * len(text) - 1) * scale


def text_mask(text: str, scale: int) -> np.ndarray:
    """A boolean [5 scale, width] mask of ``text`` (case-folded; unknown characters drawn as '?')."""
    columns = []
    for index, char in enumerate(text.lower()):
        code = _GLYPHS.get(char, _GLYPHS["?"])
        glyph = np.array([[int(row) >> shift & 1 for shift in (2, 1, 0)] for row in code], dtype=bool)
        columns.append(glyph if index == 0 else np.concatenate([np.zeros((GLYPH_HEIGHT, 1), bool), glyph], axis=1))
    mask = np.concatenate(columns, axis=1) if columns else np.zeros((GLYPH_HEIGHT, 0), bool)
    return np.kron(mask, np.ones((scale, scale), dtype=bool)).astype(bool)


def draw_text(image: np.ndarray, text: str, top: int, left: int, scale: int = 2,
              colour: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
    """Paint ``text`` into an RGB float image [H, W, 3] in place, clipped at the image's edges."""
    mask = text_mask(text, scale)
    height = max(0, min(mask.shape[0], image.shape[0] - top))
    width = max(0, min(mask.shape[1], image.shape[1] - left))
    region = image[top : top + height, left : left + width]
    region[mask[:height, :width]] = colour


def wrap(text: str, scale: int, width: int, separators: str = " >") -> list[str]:
    """Split ``text`` into lines no wider than ``width`` pixels, breaking after a separator where possible."""
    per_line = max(1, (width + scale) // ((GLYPH_WIDTH + 1) * scale))
    lines = []
    while len(text) > per_line:
        cut = max((i + 1 for i, c in enumerate(text[:per_line]) if c in separators), default=per_line)
        lines.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return lines + [text] if text else lines
