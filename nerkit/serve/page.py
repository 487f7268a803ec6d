"""The demo page of ``nerkit serve`` (``GET /``): a text box whose text is sent to ``POST /predict``
like any client's, and the answer drawn as the HTML pages draw entities (``nerkit.data.formats.html``:
the same marks, colours and labels, here built in the browser with DOM calls, so the text is never
parsed as HTML). Self-contained: no CDN, fonts or scripts from elsewhere.

Keyboard: Tab reaches the text box, Ctrl+Enter (or the button) sends it, Tab then walks the
entities, each announcing its text, type and score (a polite live region) as it gets focus.
"""

from __future__ import annotations

import html
from typing import Sequence

from nerkit.data.formats.html import document, json_for_script, legend, type_colours

SCRIPT = r"""
const settings = JSON.parse(document.getElementById("settings").textContent);
const text = document.getElementById("text"), button = document.getElementById("submit");
const message = document.getElementById("message"), result = document.getElementById("result");
const raw = document.getElementById("json"), focused = document.getElementById("focused");
const fallback = ["#dee2e6", "#495057"];
const order = (a, b) => a[0] - b[0] || b[1] - a[1] || a[2] - b[2];

function say(words) { message.textContent = words; message.hidden = !words; }

// Pieces [start, end, entity, last] properly nested: a span crossing another's end is cut there.
function pieces(entities) {
  const queue = entities.map((e, i) => [e.start, e.end, i]).sort(order), out = [];
  while (queue.length) {
    const [start, end, index] = queue.shift();
    let cut = end;
    for (const p of out) if (p[0] <= start && start < p[1] && p[1] < end) cut = Math.min(cut, p[1]);
    out.push([start, cut, index, cut === end]);
    if (cut < end) { queue.push([cut, end, index]); queue.sort(order); }
  }
  return out.sort(order);
}

function tree(list) {
  const roots = [], stack = [];
  for (const [start, end, index, last] of list) {
    const node = {start, end, index, last, children: []};
    while (stack.length && !(stack.at(-1).start <= start && end <= stack.at(-1).end)) stack.pop();
    (stack.length ? stack.at(-1).children : roots).push(node);
    stack.push(node);
  }
  return roots;
}

const height = (node) => 1 + Math.max(0, ...node.children.map(height));

// Offsets are code points (Python's), not UTF-16 units: slice an array of characters.
function draw(parent, chars, entities, nodes, start, end) {
  let position = start;
  for (const node of nodes) {
    parent.append(chars.slice(position, node.start).join(""));
    const entity = entities[node.index], [background, line] = settings.colours[entity.type] || fallback;
    const score = typeof entity.score === "number" ? entity.score.toFixed(2) : "";
    const mark = document.createElement("mark");
    mark.className = "ent" + (node.last ? "" : " cont") + (entity.source === "rule" ? " rule" : "");
    mark.tabIndex = 0;
    mark.dataset.type = entity.type;
    mark.dataset.score = score;
    mark.title = entity.type + (score ? ", score " + score : "") + (entity.source ? ", " + entity.source : "");
    mark.style.cssText = `--bg:${background};--line:${line};--height:${height(node)}`;
    mark.addEventListener("focus", () => {
      focused.textContent = `${chars.slice(entity.start, entity.end).join("")}: ${mark.title}`; });
    draw(mark, chars, entities, node.children, node.start, node.end);
    parent.append(mark);
    position = node.end;
  }
  parent.append(chars.slice(position, end).join(""));
}

async function tag() {
  const chars = Array.from(text.value);
  if (!text.value.trim()) { say("Type or paste some text first."); return; }
  if (chars.length > settings.max_chars) {
    say(`This text has ${chars.length} characters; the server takes at most ${settings.max_chars} in one request ` +
        "(its --max-request-chars). Send a shorter part of it.");
    return;
  }
  say(""); button.disabled = true; result.setAttribute("aria-busy", "true");
  try {
    const response = await fetch("predict", {method: "POST", headers: {"Content-Type": "application/json"},
                                             body: JSON.stringify({texts: [text.value]})});
    let body = null;
    try { body = await response.json(); } catch (error) { body = null; }
    if (!response.ok || !body || !body.results) {
      const why = body && body.error ? body.error : `HTTP ${response.status}`;
      say(response.status === 413 ? `The text is too large for the server: ${why}.`
          : response.status >= 500 ? `The server could not tag this text: ${why}.`
          : `The server refused the text: ${why}.`);
      return;
    }
    const record = body.results[0];
    const chars = Array.from(record.text);
    result.replaceChildren();
    draw(result, chars, record.entities, tree(pieces(record.entities)), 0, chars.length);
    raw.textContent = JSON.stringify(body, null, 2);
    document.getElementById("count").textContent =
      `(${record.entities.length} ${record.entities.length === 1 ? "entity" : "entities"})`;
  } catch (error) {
    say("The server did not answer (is nerkit serve still running?).");
  } finally {
    button.disabled = false; result.removeAttribute("aria-busy");
  }
}

button.addEventListener("click", tag);
text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); tag(); }
});
"""

STYLE = """
textarea { width: 100%; min-height: 8em; font: inherit; box-sizing: border-box; }
textarea:focus-visible, button:focus-visible, summary:focus-visible { outline: 3px solid #1a1a1a; }
button { font: inherit; padding: 0.3em 1em; margin: 0.4em 0; }
#result { border: 1px solid #ccc; padding: 0.5em; min-height: 2em; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
"""


def demo_page(entity_types: Sequence[str], *, model_name: str | None, max_chars: int) -> str:
    """The demo page for a model of ``entity_types``; texts over ``max_chars`` characters are
    refused on the page before they are sent (the server would answer 413)."""
    colours = type_colours(entity_types)
    settings = json_for_script({"colours": colours, "max_chars": max_chars})
    name = html.escape(model_name or "model")
    body = f"""<h1>nerkit: {name}</h1>
{legend(colours)}
<label for="text">Text</label>
<textarea id="text" placeholder="Type or paste text, then press Ctrl+Enter"></textarea>
<button id="submit" type="button">Find entities</button> <span>or Ctrl+Enter</span>
<p id="message" class="message" role="alert" hidden></p>
<h2>Result <span id="count"></span></h2>
<div id="result" class="text" aria-live="polite"></div>
<p id="focused" aria-live="polite"></p>
<details><summary>Raw JSON (the answer of POST /predict)</summary><pre id="json"></pre></details>
<script type="application/json" id="settings">{settings}</script>"""
    return document(f"nerkit: {model_name or 'model'}", body, style=STYLE, script=SCRIPT)


__all__ = ["demo_page"]
