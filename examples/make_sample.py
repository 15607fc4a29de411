"""Write the sample the repository ships: examples/all_data_rel.json and examples/images.zip, six questions in
the original release's format, with every input form import-upstream reads (options as a list or an object,
captions as a list or one "Image 1: ..." string, a bare-letter or sentence conclusion, an optional reasoning
field, the task named by a task/category/type field in either spelling).

The images are small drawings whose content the questions and reasoning describe; the output is byte-identical
on every run.

    python examples/make_sample.py
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
SIZE = (160, 120)
ZIP_TIME = (2025, 1, 1, 0, 0, 0)


def canvas(color: str = "white") -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", SIZE, color)
    return image, ImageDraw.Draw(image)


def car(draw: ImageDraw.ImageDraw, x: int, y: int, color: str) -> None:
    draw.rectangle([x, y, x + 24, y + 10], fill=color)
    draw.ellipse([x + 2, y + 8, x + 8, y + 14], fill="black")
    draw.ellipse([x + 16, y + 8, x + 22, y + 14], fill="black")


def speed_frames() -> list[Image.Image]:
    """Red car: +10 px per frame, blue car: +30 px per frame."""
    frames = []
    for k in range(3):
        image, draw = canvas("#dfe8d8")
        draw.rectangle([0, 40, 160, 100], fill="#8a8a8a")
        car(draw, 10 + 10 * k, 50, "red")
        car(draw, 10 + 30 * k, 78, "blue")
        frames.append(image)
    return frames


def table_views() -> list[Image.Image]:
    """A cup left of a book, seen from the front and from slightly to the right."""
    views = []
    for shift in (0, 12):
        image, draw = canvas("#f4efe6")
        draw.rectangle([10, 80, 150, 90], fill="#8b5a2b")
        draw.rectangle([40 - shift, 58, 56 - shift, 80], fill="#2e7dd7")  # cup
        draw.rectangle([90 - shift // 2, 62, 130 - shift // 2, 80], fill="#c0392b")  # book
        views.append(image)
    return views


def bar_chart(values: list[int], title_color: str) -> Image.Image:
    image, draw = canvas()
    draw.rectangle([0, 0, 160, 10], fill=title_color)
    draw.line([20, 110, 150, 110], fill="black")
    for k, v in enumerate(values):
        x = 30 + 40 * k
        draw.rectangle([x, 110 - v, x + 20, 110], fill=["#4c72b0", "#55a868", "#c44e52"][k])
    return image


def puzzle_pieces() -> list[Image.Image]:
    """A sun over a house, cut into a top half; the true bottom half and a mismatched one."""
    full, draw = canvas("#bfe3ff")
    draw.ellipse([110, 10, 140, 40], fill="#ffd23f")
    draw.polygon([(40, 60), (80, 30), (120, 60)], fill="#a23b2a")
    draw.rectangle([50, 60, 110, 110], fill="#e9c46a")
    draw.rectangle([72, 80, 88, 110], fill="#6b4226")
    top = full.crop((0, 0, 160, 60)).resize(SIZE)
    bottom = full.crop((0, 60, 160, 120)).resize(SIZE)
    wrong, wdraw = canvas("#bfe3ff")
    wdraw.rectangle([20, 0, 60, 120], fill="#2a9d8f")
    return [top, bottom, wrong.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]


def ball_photos() -> list[Image.Image]:
    """The same green ball: radius 12 px in the first photo, 36 px in the second (closer)."""
    photos = []
    for radius in (12, 36):
        image, draw = canvas("#fafafa")
        draw.ellipse([80 - radius, 60 - radius, 80 + radius, 60 + radius], fill="#2ca02c")
        photos.append(image)
    return photos


def balance(left: str, right: str) -> Image.Image:
    """A balance tilted down on the left: the left pan holds the heavier fruit."""
    image, draw = canvas("#fffdf5")
    draw.line([80, 30, 80, 110], fill="black", width=3)
    draw.line([30, 50, 130, 30], fill="black", width=3)
    draw.ellipse([18, 38, 42, 62], fill=left)
    draw.ellipse([118, 18, 142, 42], fill=right)
    return image


def items_and_images() -> tuple[list[dict], dict[str, Image.Image]]:
    images: dict[str, Image.Image] = {}

    def add(folder: str, pictures: list[Image.Image]) -> list[str]:
        paths = [f"images/{folder}/{k + 1}.jpg" for k in range(len(pictures))]
        images.update(zip(paths, pictures))
        return paths

    items = [
        {
            "task": "Speed Comparison",
            "question": "Frame 1: <image> Frame 2: <image> Frame 3: <image> The frames were taken one second "
                        "apart. Which car moves faster?",
            "images": add("speed_0001", speed_frames()),
            "options": ["A. The red car", "B. The blue car", "C. Both move at the same speed"],
            "summary": "Track how far each car moves between consecutive frames and compare the distances.",
            "caption": "Image 1: A red car and a blue car stand near the left edge of a grey road. "
                       "Image 2: The red car has moved a little to the right; the blue car has moved much further. "
                       "Image 3: The blue car is now far ahead of the red car.",
            "text2img": "'the red car' refers to the red vehicle on the upper lane in every frame; 'the blue car' "
                        "refers to the blue vehicle on the lower lane.",
            "img2img": "Between consecutive frames the red car moves 10 px while the blue car moves 30 px.",
            "conclusion": "B",
        },
        {
            "category": "Location Relationship",
            "question": "Here is a table from the front: <image> and from a little to the right: <image>. "
                        "Where is the cup relative to the book?",
            "images": add("location_0002", table_views()),
            "options": {"A": "Left of the book", "B": "Right of the book", "C": "On top of the book"},
            "summary": "Find the cup and the book in both views and read their left-right order.",
            "caption": ["A blue cup and a red book stand on a wooden table, the cup on the left.",
                        "The same table seen from further right; the cup is still left of the book."],
            "text2img": "'the cup' is the blue object and 'the book' the red object on the table in both images.",
            "img2img": "In both views the blue cup lies left of the red book, so the order does not depend on "
                       "the viewpoint.",
            "reasoning": "Both viewpoints agree, and neither shows the cup above the book.",
            "conclusion": "The cup stands to the left of the book in both views. Therefore, the answer is A.",
        },
        {
            "type": "chart_analysis",
            "question": "Sales in 2022: <image> Sales in 2023: <image> The bars show products X, Y and Z from left "
                        "to right. Which product's sales grew the most?",
            "images": add("chart_0003", [bar_chart([40, 60, 30], "#999999"), bar_chart([50, 62, 80], "#333333")]),
            "options": ["A. Product X", "B. Product Y", "C. Product Z"],
            "summary": "Read each product's bar height in both charts and compare the differences.",
            "caption": ["A bar chart with bars of height 40, 60 and 30 for X, Y and Z.",
                        "A bar chart with bars of height 50, 62 and 80 for X, Y and Z."],
            "text2img": "'sales in 2022' is the first chart and 'sales in 2023' the second; each product is the "
                        "bar at the same position in both.",
            "img2img": "X grows by 10, Y by 2 and Z by 50 between the two charts.",
            "conclusion": "Product Z grew by 50, more than X (10) and Y (2), so the answer is C.",
        },
        {
            "task": "image_puzzle",
            "question": "This is the top half of a picture: <image> Which piece is its bottom half, "
                        "<image> or <image>?",
            "images": add("puzzle_0004", puzzle_pieces()),
            "options": ["A: The first piece", "B: The second piece"],
            "summary": "Match colours and shapes along the cut edge of the top half.",
            "caption": "Image 1: A sky with a yellow sun and the red roof of a house. Image 2: The yellow walls "
                       "and brown door of a house. Image 3: A green stripe on a light blue background.",
            "text2img": "'the top half' is the first image; the pieces are the second and third images.",
            "img2img": "The roof in the top half ends where yellow walls begin in the second image; the third "
                       "image has no house at all.",
            "conclusion": "(A)",
        },
        {
            "task": "Depth Relationship",
            "question": "The same ball was photographed twice with the same camera: <image> <image> "
                        "In which photo is the ball closer to the camera?",
            "images": add("depth_0005", ball_photos()),
            "options": ["A. The first photo", "B. The second photo"],
            "summary": "An object of fixed size looks larger when it is closer to the camera.",
            "caption": ["A small green ball in the middle of a white background.",
                        "A large green ball in the middle of a white background."],
            "text2img": "'the ball' is the green disc in both photos.",
            "img2img": "The ball's radius is 12 px in the first photo and 36 px in the second, three times "
                       "larger.",
            "conclusion": "The ball looks three times larger in the second photo, so it is closer there.",
            "answer": "B",
        },
        {
            "category": "Weight Comparison",
            "question": "First weighing: <image> Second weighing: <image> The red fruit is an apple, the orange "
                        "one an orange and the yellow one a lemon. Which fruit is the heaviest?",
            "images": add("weight_0006", [balance("red", "orange"), balance("orange", "yellow")]),
            "options": {"A": "The apple", "B": "The orange", "C": "The lemon"},
            "summary": "Each balance tips towards its heavier pan; chain the two comparisons.",
            "caption": ["A balance tipped down on the left, an apple on the left pan and an orange on the right.",
                        "A balance tipped down on the left, an orange on the left pan and a lemon on the right."],
            "text2img": "'the apple' is the red fruit in the first image, 'the orange' appears in both images and "
                        "'the lemon' is the yellow fruit in the second image.",
            "img2img": "The apple outweighs the orange, and the orange outweighs the lemon.",
            "conclusion": "The apple is heavier than the orange, which is heavier than the lemon: the answer is A.",
        },
    ]
    return items, images


def main() -> None:
    items, images = items_and_images()
    (HERE / "all_data_rel.json").write_text(json.dumps(items, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    with zipfile.ZipFile(HERE / "images.zip", "w", compression=zipfile.ZIP_STORED) as archive:
        for path, image in images.items():
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=85)
            archive.writestr(zipfile.ZipInfo(path, date_time=ZIP_TIME), buf.getvalue())
    print(f"wrote {len(items)} items and {len(images)} images to {HERE}")


if __name__ == "__main__":
    main()
