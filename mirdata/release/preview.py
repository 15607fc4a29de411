"""`mirdata preview DIR --out preview.html`: one self-contained page to look at sample records before trusting them.

Each record shows its question with the images in place, the options with the answer marked, the five
reasoning stages with every `[rK]` citation coloured like its box, and the region boxes drawn over the images
(an SVG overlay in image pixel coordinates, so boxes stay on their objects at any display size). A select box
filters by task.

The images are embedded as data URLs: the page is one file that can be mailed, attached to a CI run or moved
anywhere without breaking, which is what a preview is for. Images larger than PREVIEW_MAX_SIDE are embedded
as downscaled JPEGs to keep the page light; the boxes keep the original coordinates.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections import Counter
from pathlib import Path

from PIL import Image

from mirdata.errors import MirdataError
from mirdata.progress import progress_bar
from mirdata.registry import task_rank
from mirdata.schema.record import IMAGE_TOKEN, Record, option_label
from mirdata.store import MIRStore, atomic_write, decode_image

PREVIEW_MAX_SIDE = 1024
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
           "#808000", "#000075", "#469990", "#bfef45"]
STAGE_TITLES = {"summary": "Summary", "caption": "Caption", "text2region": "Text → region",
                "region2region": "Region → region", "conclusion": "Conclusion"}
CITATION = re.compile(r"\[(r\d+)\]")

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f4f4f6; color: #1d1d1f; }
header { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #ddd; padding: 10px 24px;
         display: flex; gap: 24px; align-items: baseline; z-index: 2; }
header h1 { font-size: 20px; margin: 0; }
main { padding: 16px 24px; display: grid; gap: 16px; }
article { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 14px 18px; }
article h2 { font-size: 15px; margin: 0 0 8px; font-family: ui-monospace, monospace; }
.tag { font: 12px system-ui, sans-serif; background: #eef; border-radius: 4px; padding: 1px 6px; margin-left: 6px; }
.tag.easy { background: #dfd; } .tag.hard { background: #fdd; }
.question { white-space: pre-wrap; }
figure { display: inline-block; vertical-align: top; margin: 6px 4px; }
figcaption { font-size: 12px; color: #555; text-align: center; }
.frame { position: relative; display: inline-block; width: 280px; max-width: 90vw; outline: 1px solid #bbb; }
.frame img { display: block; width: 100%; height: auto; }
.frame svg { position: absolute; inset: 0; width: 100%; height: 100%; }
.frame rect { fill: none; stroke-width: 2.5; vector-effect: non-scaling-stroke; }
.box-label { position: absolute; font: bold 11px system-ui, sans-serif; background: rgba(255,255,255,.8);
             padding: 0 3px; border-radius: 2px; transform: translateY(-100%); white-space: nowrap; }
.box-label.inside { transform: none; }
ul.options { margin: 8px 0; padding-left: 12px; list-style: none; }
ul.options li.answer { font-weight: bold; color: #11691b; }
ul.options li.answer::after { content: "  ✓ answer"; font-size: 12px; }
dl { margin: 6px 0 0; } dt { font-weight: bold; margin-top: 6px; } dd { margin-left: 16px; white-space: pre-wrap; }
.cite { font-weight: bold; font-family: ui-monospace, monospace; }
"""

SCRIPT = """
const select = document.getElementById('task-filter');
const shown = document.getElementById('shown');
function applyFilter() {
  let n = 0;
  for (const el of document.querySelectorAll('article.record')) {
    const keep = !select.value || el.dataset.task === select.value;
    el.hidden = !keep;
    if (keep) n++;
  }
  shown.textContent = n;
}
select.addEventListener('change', applyFilter);
applyFilter();
"""


def select_records(records: list[Record], num: int) -> list[Record]:
    """Up to `num` records, taken in turn from each task (in the fixed task order) so every task shows."""
    by_task: dict[str, list[Record]] = {}
    for r in records:
        by_task.setdefault(r.task, []).append(r)
    queues = [by_task[t] for t in sorted(by_task, key=task_rank)]
    chosen: list[Record] = []
    depth = 0
    while len(chosen) < num and any(depth < len(q) for q in queues):
        chosen += [q[depth] for q in queues if depth < len(q)][: num - len(chosen)]
        depth += 1
    return chosen


def _data_url(path: Path) -> tuple[str, int, int]:
    """The image as a data URL, with its original width and height."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MirdataError(f"{path}: no such image file (named by records.jsonl)") from None
    except IsADirectoryError:
        raise MirdataError(f"{path}: is a folder, not an image file (named by records.jsonl)") from None
    try:
        with decode_image(data, path) as im:
            width, height = im.size
            if max(width, height) > PREVIEW_MAX_SIDE or im.format not in ("JPEG", "PNG", "WEBP", "GIF"):
                if max(width, height) > PREVIEW_MAX_SIDE:
                    im.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
                buf = io.BytesIO()
                im.convert("RGB").save(buf, format="JPEG", quality=85)
                data, mime = buf.getvalue(), "image/jpeg"
            else:
                mime = Image.MIME[im.format]
    except OSError as e:
        raise MirdataError(f"{path}: not a readable image ({e})") from None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}", width, height


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _with_citations(text: str, colours: dict[str, str]) -> str:
    """Escaped text with each [rK] citation coloured like region rK's box."""
    out, last = [], 0
    for m in CITATION.finditer(text):
        out.append(_esc(text[last:m.start()]))
        colour = colours.get(m.group(1))
        style = f' style="color:{colour}"' if colour else ""
        out.append(f'<span class="cite"{style}>{_esc(m.group(0))}</span>')
        last = m.end()
    out.append(_esc(text[last:]))
    return "".join(out)


def _figure(record: Record, k: int, image: tuple[str, int, int], colours: dict[str, str]) -> str:
    """The image with its regions: boxes in an SVG in image pixels, labels as HTML placed by percentage (so the
    text keeps its size whatever the image's scale)."""
    url, width, height = image
    boxes, labels = [], []
    for region in record.regions:
        if region.image != k:
            continue
        x0, y0, x1, y1 = region.box
        colour = colours[region.id]
        boxes.append(f'<rect data-region="{_esc(region.id)}" x="{x0:g}" y="{y0:g}" width="{x1 - x0:g}" '
                     f'height="{y1 - y0:g}" stroke="{colour}"><title>{_esc(region.id)}: {_esc(region.label)}</title>'
                     "</rect>")
        # above the box's top-left corner; inside the box at the top edge, right-aligned near the right edge
        across = (f"right:{100 * (1 - x1 / width):.2f}%" if x0 > 0.55 * width else f"left:{100 * x0 / width:.2f}%")
        inside = " inside" if y0 < 0.08 * height else ""
        labels.append(f'<span class="box-label{inside}" style="{across};top:{100 * y0 / height:.2f}%;'
                      f'color:{colour}">{_esc(region.id)} {_esc(region.label)}</span>')
    return (f'<figure><div class="frame"><img src="{url}" width="{width}" height="{height}" '
            f'alt="image {k + 1} of {_esc(record.id)}"><svg viewBox="0 0 {width} {height}" '
            f'preserveAspectRatio="none">{"".join(boxes)}</svg>{"".join(labels)}</div>'
            f"<figcaption>image {k + 1}</figcaption></figure>")


def _article(record: Record, images: list[tuple[str, int, int]]) -> str:
    # one colour per label, so the same object has the same colour in every image and in the citations
    labels = list(dict.fromkeys(r.label for r in record.regions))
    colours = {r.id: PALETTE[labels.index(r.label) % len(PALETTE)] for r in record.regions}
    pieces = record.question.split(IMAGE_TOKEN)
    question = []
    for k, piece in enumerate(pieces):
        question.append(_esc(piece))
        if k < len(images):
            question.append(_figure(record, k, images[k], colours))
    options = "".join(
        f'<li{" class=answer" if option_label(opt) == record.answer else ""}>'
        f"{_esc(opt)}</li>" for opt in record.options)
    captions = "".join(f"<li>{_with_citations(c, colours)}</li>" for c in record.caption)
    stages = {
        "summary": _with_citations(record.summary, colours),
        "caption": f"<ol>{captions}</ol>",
        "text2region": _with_citations(record.text2region, colours),
        "region2region": _with_citations(record.region2region, colours),
        "conclusion": _with_citations(record.conclusion, colours),
    }
    stage_html = "".join(f"<dt>{STAGE_TITLES[name]}</dt><dd>{body}</dd>" for name, body in stages.items())
    rating = ""
    if record.difficulty:
        rate = f" · pass rate {record.pass_rate:.2f}" if record.pass_rate is not None else ""
        rating = f'<span class="tag {_esc(record.difficulty)}">{_esc(record.difficulty)}{rate}</span>'
    return (f'<article class="record" data-task="{_esc(record.task)}" id="{_esc(record.id)}">'
            f'<h2>{_esc(record.id)}<span class="tag">{_esc(record.category)} / {_esc(record.task)}</span>{rating}</h2>'
            f'<div class="question">{"".join(question)}</div><ul class="options">{options}</ul>'
            f"<details open><summary>Reasoning</summary><dl>{stage_html}</dl></details></article>")


def render_preview(root: str | Path, num: int = 24, show_progress: bool = True) -> tuple[str, int]:
    """The page's HTML for up to `num` records of the MIR folder `root`, and how many it shows."""
    if num < 1:
        raise MirdataError(f"--num must be at least 1, not {num}")
    store = MIRStore(root)
    records = store.read()
    if not records:
        raise MirdataError(f"{store.records_path}: no records to preview")
    chosen = select_records(records, num)
    articles = []
    with progress_bar(transient=True) as bar:
        job = bar.add_task("embedding images", total=len(chosen), visible=show_progress)
        for record in chosen:
            articles.append(_article(record, [_data_url(store.image_path(p)) for p in record.images]))
            bar.advance(job)
    counts = Counter(r.task for r in chosen)
    task_options = "".join(f'<option value="{_esc(t)}">{_esc(t)} ({counts[t]})</option>'
                           for t in sorted(counts, key=task_rank))
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>MIR preview: {len(chosen)} records</title><style>{STYLE}</style></head><body>"
        f'<header><h1>MIR preview</h1><span><span id="shown">{len(chosen)}</span> of {len(chosen)} sample records '
        f"(of {len(records):,} in {_esc(Path(root).name or str(root))})</span>"
        '<label>task <select id="task-filter"><option value="">all tasks</option>'
        f"{task_options}</select></label></header><main>{''.join(articles)}</main>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )
    return page, len(chosen)


def write_preview(root: str | Path, out: str | Path, num: int = 24, show_progress: bool = True) -> int:
    """Write the preview page of `root` to `out`; returns the number of records shown."""
    page, shown = render_preview(root, num, show_progress)
    atomic_write(Path(out), page.encode("utf-8"))
    return shown
