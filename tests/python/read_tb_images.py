"""Reads the images of one TensorBoard run directory with the real `tensorboard` package and
decodes each with Pillow (a tensorboard dependency); prints JSON for tests/render_cli.rs:
{tag: [{"step", "width", "height", "decoded": [w, h], "mode"}, ...]}.
"""

import io
import json
import sys

from PIL import Image
from tensorboard.backend.event_processing import event_accumulator


def main(run_dir):
    acc = event_accumulator.EventAccumulator(run_dir, size_guidance={event_accumulator.IMAGES: 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["images"]:
        rows = []
        for e in acc.Images(tag):
            im = Image.open(io.BytesIO(e.encoded_image_string))
            im.load()  # decodes every pixel, not just the header
            rows.append({"step": e.step, "width": e.width, "height": e.height,
                         "decoded": list(im.size), "mode": im.mode})
        out[tag] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
