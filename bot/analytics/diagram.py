"""A module's flow diagram with the funnel drawn on it: learners on every edge, where they stop on every step.

The diagram is ``bot.flows.graph``'s Graphviz text for the module (the same one ``bottega flows graph`` prints),
with each edge's label given its count of learners who took it and each step the number who stopped there;
Graphviz's ``dot`` (a Debian package, also used by the flows tests) lays it out as SVG. The SVG uses
presentation attributes only (no script, no style attribute), so it goes inline under the console's CSP.
Layouts are cached per (module version, counts): the page stays fast when nothing moved.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

from bot.flows.graph import START_NODE, node_id, render
from bot.flows.spec import Flow

DOT_TIMEOUT_SECONDS = 10


def annotated_dot(flow: Flow, edges: dict[tuple[str, str], int], stopped: dict[str, int]) -> str:
    """``flows graph``'s dot text with counts: ``n=12`` on edges, ``stop 3`` on steps, pen width by traffic."""
    text = render(flow, fmt="dot")
    top = max(edges.values(), default=0) or 1
    counts = {(START_NODE if src == "start" else node_id(src), node_id(dst)): n for (src, dst), n in edges.items()}
    pattern = re.compile(r"^    (\w+) -> (\w+)(?: \[label=\"(.*)\"\])?;$")
    pairs: dict[tuple[str, str], int] = {}
    for line in text.splitlines():
        found = pattern.match(line)
        if found:
            pairs[(found.group(1), found.group(2))] = pairs.get((found.group(1), found.group(2)), 0) + 1
    drawn: set[tuple[str, str]] = set()
    lines = []
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            source, target, label = match.group(1), match.group(2), match.group(3) or ""
            if (source, target) in drawn:
                continue  # one edge per pair of steps: the learners who went that way (quiz options: item analysis)
            drawn.add((source, target))
            if pairs[(source, target)] > 1:
                label = ""
            n = counts.get((source, target), 0)
            width = 1 + 4 * n / top
            label = (label + "\\n" if label else "") + f"n={n}"
            line = f'    {source} -> {target} [label="{label}", penwidth={width:.1f}];'
        else:
            node = re.match(r"^    s_(\w+) \[shape=(\w+), label=\"(.*)\"\];$", line)
            if node and stopped.get(node.group(1)):
                line = (f'    s_{node.group(1)} [shape={node.group(2)}, label="{node.group(3)}\\nstop '
                        f'{stopped[node.group(1)]}", color="#c0392b"];')
        lines.append(line)
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=64)
def svg_of(dot_text: str) -> str:
    """Graphviz's SVG for ``dot_text`` (its XML prologue and doctype dropped for inlining); "" without dot."""
    dot = shutil.which("dot")
    if dot is None:
        return ""
    result = subprocess.run([dot, "-Tsvg"], input=dot_text.encode(), capture_output=True,
                            timeout=DOT_TIMEOUT_SECONDS, check=True)
    svg = result.stdout.decode()
    return svg[svg.index("<svg"):]


def funnel_svg(flow: Flow, edges: dict[tuple[str, str], int], stopped: dict[str, int]) -> str:
    return svg_of(annotated_dot(flow, edges, stopped))
