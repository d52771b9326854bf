#!/usr/bin/python3
"""Checks a monitoring report's HTML page in a real browser: self-contained, and every chart drawn.

    /usr/bin/python3 tests/check_report_chromium.py REPORT.html [--keep DIR]

The page is what adapter/monitor/report_html.cpp writes. Four checks, each printed on one line:

1. Static: the file references nothing outside itself. Parsed with html.parser, it must have no
   script, iframe, frame, object, embed, applet, link, base, img, picture, audio, video, source,
   track or portal element, no meta refresh, no on* attribute, and no src, href, xlink:href,
   srcset, action, formaction, poster, data, background, ping, ... attribute whose value is not a
   fragment of the page itself ("#id"): so no http(s):, //, file: nor data: URI. Every attribute
   value and the text of every <style> (CSS escapes decoded first) must have no url() but
   url(#id), no @import, @font-face, image-set(), image() nor src().
2. Network: headless Chromium loads the page with --enable-logging=stderr --v=0,
   --host-resolver-rules="MAP * ~NOTFOUND" (any request fails instead of leaving the machine) and
   --log-net-log; any request the net log shows the page making (its network isolation key is the
   file:// site, which tells it from Chromium's own background requests) fails the check, as does
   a "Failed to load resource" or net::ERR_ line on stderr. This catches what the static check
   could miss.
3. DOM: Chromium's --dump-dom must hold each chart (chart-scores, chart-bands, chart-psi,
   chart-calibration, chart-auc) as an <svg> with viewBox, width, height and a <title>, inside
   <section id="s-CHART"> directly under <body>, with at least one element of class "axis".
4. Pixels: for each chart, Chromium takes --screenshot of a copy of the page with a <style>
   appended that hides every other section (display:none) and, inside the chart, every element
   but one class (visibility:hidden, which keeps the layout). Shown alone:
   - "axis" (axis lines, ticks, tick labels) must paint at least 500 pixels: the chart is drawn;
   - "mark" (the data: bars, points, lines) must paint at least 30 pixels; if it paints none,
     the chart passes only when it has a "nodata" text that paints at least 100 pixels (an empty
     report says "no outcome known yet" rather than leaving a blank plot).
   So a chart whose data marks are missing, empty or drawn off the plot fails, although its axes
   are there. A pixel counts when one of its channels differs from the background (the most
   common colour) by more than 40. The screenshots are PNG decoded here with zlib (8-bit RGB or
   RGBA, non-interlaced, which is what Chromium writes).
Chromium also takes a screenshot of the whole page (1280 pixels wide), kept with the others in
DIR when --keep is given.

Chromium is /usr/bin/chromium, or `chromium` on PATH. Exits 0 when every check passes, 1 when one
fails (it says which and why), 2 when the check could not run (no file, no Chromium, Chromium
failed).
"""
import html.parser
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

CHARTS = ["chart-scores", "chart-bands", "chart-psi", "chart-calibration", "chart-auc"]
FORBIDDEN_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "link",
                  "base", "img", "picture", "audio", "video", "source", "track", "portal"}
URL_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "imagesrcset", "action", "formaction",
                  "poster", "data", "background", "ping", "codebase", "cite", "longdesc",
                  "manifest", "lowsrc", "dynsrc", "icon", "archive", "classid", "usemap", "profile"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
             "track", "wbr"}
SHAPES = {"rect", "circle", "ellipse", "line", "path", "polyline", "polygon", "text"}
MIN_AXIS_PIXELS, MIN_MARK_PIXELS, MIN_NODATA_PIXELS = 500, 30, 100
WINDOW_WIDTH = 1280


class Failure(Exception):
    """The check could not run (exit 2)."""


# ---- 1. Static ----------------------------------------------------------------------------

def css_unescape(css):
    css = re.sub(r"\\([0-9a-fA-F]{1,6})\s?", lambda m: chr(int(m.group(1), 16)), css)
    return re.sub(r"\\(.)", r"\1", css)


def css_problems(css, where):
    text = css_unescape(css)
    problems = []
    for m in re.finditer(r"url\(\s*['\"]?([^'\")]*)", text, re.I):
        if not m.group(1).strip().startswith("#"):
            problems.append(f"{where}: url({m.group(1).strip()}) loads from outside the page")
    for word in ("@import", "@font-face", "image-set(", "image(", "src("):
        if word in text.lower():
            problems.append(f"{where}: {word} in CSS")
    return problems


class StaticChecker(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []
        self.in_style = False
        self.references = 0

    def handle_starttag(self, tag, attrs):
        where = f"line {self.getpos()[0]}: <{tag}>"
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"{where}: element not allowed in a self-contained page")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.problems.append(f"{where}: script in attribute {name}")
            if name in URL_ATTRIBUTES:
                self.references += 1
                if not value.strip().startswith("#"):
                    self.problems.append(f"{where}: {name}={value!r} loads from outside the page")
            if tag == "meta" and name == "http-equiv" and value.lower() == "refresh":
                self.problems.append(f"{where}: meta refresh")
            self.problems += css_problems(value, f"{where} {name}")
        self.in_style = tag == "style"

    def handle_endtag(self, tag):
        self.in_style = False

    def handle_data(self, data):
        if self.in_style:
            self.problems += css_problems(data, f"line {self.getpos()[0]}: <style>")


def static_check(text):
    checker = StaticChecker()
    checker.feed(text)
    checker.close()
    return checker.problems


# ---- Chromium ---------------------------------------------------------------------------

def find_chromium():
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise Failure("no Chromium: install Debian's chromium (apt-get install chromium)")


def run_chromium(chromium, work, page, *flags):
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--force-device-scale-factor=1", f"--user-data-dir={os.path.join(work, 'profile')}",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--host-resolver-rules=MAP * ~NOTFOUND", *flags,
               "file://" + os.path.abspath(page)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise Failure(f"Chromium did not finish within 120 s: {' '.join(command)}")
    if done.returncode != 0:
        raise Failure(f"Chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done


# ---- 2. Network -------------------------------------------------------------------------

def network_requests(chromium, work, page):
    """The URLs the page asked the network for, and suspicious stderr lines."""
    netlog = os.path.join(work, "netlog.json")
    done = run_chromium(chromium, work, page, "--enable-logging=stderr", "--v=0",
                        f"--log-net-log={netlog}", "--dump-dom")
    with open(netlog, encoding="utf-8") as f:
        log = json.load(f)
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls = set()
    for event in log["events"]:
        params = event.get("params") or {}
        if names.get(event["type"]) == "URL_REQUEST_START_JOB" and \
                params.get("network_isolation_key", "").startswith("file://"):
            urls.add(params.get("url", "?"))
    lines = [l for l in done.stderr.splitlines()
             if "Failed to load resource" in l or "net::ERR_" in l]
    return sorted(urls), lines


# ---- 3. DOM -----------------------------------------------------------------------------

class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children, self.text = [], ""

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


class TreeBuilder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", [], None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in VOID_TAGS:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, attrs, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.text += data


def parse_dom(text):
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def chart_structure(root, chart):
    """(problems, svg height, number of data marks, the no-data text or None) of one chart."""
    svg = next((n for n in root.walk() if n.attrs.get("id") == chart), None)
    if svg is None or svg.tag != "svg":
        return [f"no <svg id=\"{chart}\">"], 0, 0, None
    problems = [f"<svg> has no {a}" for a in ("viewbox", "width", "height") if a not in svg.attrs]
    if not any(c.tag == "title" and c.text.strip() for c in svg.children):
        problems.append("<svg> has no <title>")
    section = svg.parent
    while section is not None and section.attrs.get("id") != "s-" + chart:
        section = section.parent
    if section is None or section.parent is None or section.parent.tag != "body":
        problems.append(f"not inside a <section id=\"s-{chart}\"> directly under <body>")
    if not any("axis" in n.classes() for n in svg.walk()):
        problems.append("no element of class \"axis\"")
    marks = sum(1 for n in svg.walk() if n.tag in SHAPES and in_class(n, "mark", svg))
    nodata = next((n.text.strip() for n in svg.walk() if "nodata" in n.classes()), None)
    try:
        height = float(svg.attrs.get("height", "0"))
    except ValueError:
        height = 0
    return problems, height, marks, nodata


def in_class(node, cls, stop):
    while node is not None and node is not stop.parent:
        if cls in node.classes():
            return True
        node = node.parent
    return False


# ---- 4. Pixels --------------------------------------------------------------------------

def read_png(path):
    """(width, height, bytes per pixel, rows) of an 8-bit RGB or RGBA non-interlaced PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Failure(f"{path} is not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise Failure(f"{path}: PNG of depth {depth}, colour type {colour}, interlace "
                      f"{interlace}: only 8-bit RGB/RGBA non-interlaced is decoded here")
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        unfilter(kind, line, previous, bpp)
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, rows


def unfilter(kind, line, prev, bpp):
    if kind == 0:
        return
    if kind == 2:
        line[:] = bytes((a + b) & 255 for a, b in zip(line, prev))
        return
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 255
        elif kind == 3:
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + best) & 255
        else:
            raise Failure(f"PNG filter type {kind}")


def painted_pixels(path):
    """How many pixels differ from the background (the most common colour) by more than 40."""
    width, height, bpp, rows = read_png(path)
    counts = {}
    for row in rows[::7]:
        for x in range(0, width * bpp, bpp * 13):
            key = row[x:x + 3]
            counts[key] = counts.get(key, 0) + 1
    background = max(counts, key=counts.get)
    blank = background * width if bpp == 3 else None
    painted = 0
    for row in rows:
        if blank is not None and row == blank:
            continue
        for x in range(0, width * bpp, bpp):
            if max(abs(row[x + c] - background[c]) for c in range(3)) > 40:
                painted += 1
    return painted


def isolate(text, chart, cls):
    s = f"#s-{chart}"
    style = (f"<style>body>*:not({s}){{display:none!important}}"
             f"body *{{visibility:hidden!important}}"
             f"{s} svg .{cls},{s} svg .{cls} *{{visibility:visible!important}}</style>")
    return text + style


def pixels_of(chromium, work, text, chart, cls, svg_height, keep):
    page = os.path.join(work, f"{chart}-{cls}.html")
    png = os.path.join(work, f"{chart}-{cls}.png")
    with open(page, "w", encoding="utf-8") as f:
        f.write(isolate(text, chart, cls))
    height = int(svg_height) + 200
    run_chromium(chromium, work, page, f"--window-size={WINDOW_WIDTH},{height}",
                 f"--screenshot={png}")
    if keep:
        shutil.copy(png, keep)
    return painted_pixels(png)


# ---- Main -------------------------------------------------------------------------------

def check(path, keep):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    failed = []

    def report(ok, line):
        print(("ok    " if ok else "FAIL  ") + line)
        if not ok:
            failed.append(line)

    problems = static_check(text)
    report(not problems, "static: " + ("; ".join(problems) if problems else
                                       "nothing referenced outside the page"))
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="check-report-") as work:
        page = os.path.join(work, "report.html")
        shutil.copy(path, page)
        urls, lines = network_requests(chromium, work, page)
        report(not urls and not lines, "network: " + (
            "the page asked for " + ", ".join(urls + lines) if urls or lines else
            "no request made by the page (net log and stderr, every host unresolvable)"))
        dom = parse_dom(run_chromium(chromium, work, page, "--dump-dom").stdout)
        full = os.path.join(work, "report.png")
        run_chromium(chromium, work, page, f"--window-size={WINDOW_WIDTH},6000",
                     f"--screenshot={full}")
        if keep:
            shutil.copy(full, keep)
        for chart in CHARTS:
            problems, height, marks, nodata = chart_structure(dom, chart)
            if problems:
                report(False, f"{chart}: " + "; ".join(problems))
                continue
            axis = pixels_of(chromium, work, text, chart, "axis", height, keep)
            mark = pixels_of(chromium, work, text, chart, "mark", height, keep)
            if axis < MIN_AXIS_PIXELS:
                report(False, f"{chart}: axes not drawn ({axis} pixels)")
            elif mark >= MIN_MARK_PIXELS:
                report(True, f"{chart}: drawn, {marks} data marks painting {mark} pixels, "
                             f"axes {axis} pixels")
            elif nodata is not None and \
                    pixels_of(chromium, work, text, chart, "nodata", height, keep) >= \
                    MIN_NODATA_PIXELS:
                report(True, f"{chart}: no data, and it says so (\"{nodata}\"), axes {axis} "
                             f"pixels")
            else:
                report(False, f"{chart}: blank: {marks} data marks painting {mark} pixels and "
                              f"no \"no data\" text shown")
    print(f"{path}: " + (f"{len(failed)} check(s) failed" if failed else "every check passed"))
    return 1 if failed else 0


def main(argv):
    args = argv[1:]
    keep = None
    if "--keep" in args:
        i = args.index("--keep")
        keep = args[i + 1] if i + 1 < len(args) else None
        del args[i:i + 2]
        if keep is None:
            print(__doc__, file=sys.stderr)
            return 2
        os.makedirs(keep, exist_ok=True)
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return check(args[0], keep)
    except (Failure, OSError) as e:
        print(f"cannot check {args[0]}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
