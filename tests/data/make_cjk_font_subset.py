"""One-off: a 20 KB subset of WenQuanYi Micro Hei holding the characters the tests draw (Chinese names).

Lets the tests check that ``--font`` really renders Chinese names, without a system CJK font. Re-run only to
add characters:

    apt-get install fonts-wqy-microhei
    python tests/data/make_cjk_font_subset.py --source /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
"""
from __future__ import annotations

import argparse
import pathlib

from fontTools import subset

CHARACTERS = ("奥巴马柯林斯拜登中文名张伟李娜王芳 unknown0123456789.-_"
              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
OUTPUT = pathlib.Path(__file__).with_name("fonts") / "wqy-microhei-subset.ttf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
    args = parser.parse_args()
    options = subset.Options()
    options.font_number = 0                    # the .ttc's first face: WenQuanYi Micro Hei
    options.layout_features = []
    options.name_IDs = ["*"]                   # keep the copyright and licence records
    options.notdef_outline = True
    font = subset.load_font(args.source, options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=CHARACTERS)
    subsetter.subset(font)
    OUTPUT.parent.mkdir(exist_ok=True)
    subset.save_font(font, str(OUTPUT), options)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
