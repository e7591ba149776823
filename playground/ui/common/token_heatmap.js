// The token heatmap (playground/ui/common/token_heatmap.py): an answer's tokens coloured by the
// probability of the one the model chose, and the inspector under it. Everything a click, a key
// or a hover does happens here, in the browser, without a rerun of the page; only "Continue with
// this token" goes back to Python (a trigger value). Model text goes into the page with
// textContent only: it is never parsed as HTML. No outside assets.
//
// data: {cells: [[text, probability|null, first token, end token]] (a cell is one piece of
// text: a token, or the tokens one UTF-8 character was split across), tokens: [{t, lp, p, b, e?,
// s?, tail?, a: [[t, lp, b]]}] (text, logprob, probability, bytes as hex, entropy of the top-k,
// sampled logprob, why it was drawn from the tail, the top alternatives), threshold, palette: [[bound, colour]], unknown, ink, branch: {offered, reason}
// (whether the inspector offers "Continue with this token", and why not), legend, holder}.
const TIP_ALTERNATIVES = 5; // shown when hovering a token

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let view = parentElement.__heatmap;
  if (!view || view.id !== data.id) {
    if (view) view.root.remove();
    view = parentElement.__heatmap = build(data, setTriggerValue, parentElement.__heatmap);
    parentElement.append(view.root);
  }
  view.setTrigger = setTriggerValue;
  return undefined;
}

function el(tag, style, text) {
  const node = document.createElement(tag);
  if (style) node.setAttribute("style", style);
  if (text !== undefined) node.textContent = text;
  return node;
}

function percent(p) {
  if (p === null || p === undefined) return "outside the top 20";
  if (p > 0 && p < 0.001) return "<0.1%";
  return (p * 100).toFixed(1) + "%";
}

function prob(lp) {
  return lp === null ? null : Math.exp(Math.min(lp, 0));
}

function shown(text) {
  // whitespace made visible where a token stands alone (a list, the inspector)
  return text.replace(/ /g, "\u2423").replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5") || "\u2205";
}

function bucketClasses(data) {
  // one class per palette bucket, its rule in the heatmap's style sheet
  const sheet = data.palette.map(([, fill], n) => `.pg-token.pg-b${n}{background:${fill};}`).join("")
    + `.pg-token.pg-bu{background:${data.unknown};}`
    + `.pg-token{color:${data.ink};border-radius:3px;padding:1px 0;margin:0 1px 0 0;cursor:pointer;}`
    + ".pg-token.pg-unsure-token{outline:2px solid #c2410c;outline-offset:-1px;}"
    + '.pg-token[aria-selected="true"]{box-shadow:0 0 0 2px #1f2328;}';
  let style = document.getElementById("pg-heatmap-style");
  if (!style) {
    style = document.createElement("style");
    style.id = "pg-heatmap-style";
    document.head.append(style);
  }
  if (style.textContent !== sheet) style.textContent = sheet;
  return (p) => {
    if (p === null || p === undefined) return "pg-bu";
    for (let n = 0; n < data.palette.length; n++) if (p >= data.palette[n][0]) return "pg-b" + n;
    return "pg-b" + (data.palette.length - 1);
  };
}

function build(data, setTriggerValue, previous) {
  const root = el("div", "position:relative;");
  root.className = "pg-heatmap-root";
  const view = {
    id: data.id, root, cells: [], selected: -1, threshold: data.threshold, setTrigger: setTriggerValue,
  };
  // keep the reader's place when the same answer is drawn again (a rerun sends new data)
  const keep = previous && previous.count === data.cells.length && previous.answer === data.answer ? previous : null;

  const unsure = el("div", "font-size:0.85rem;margin:0 0 0.35rem;line-height:1.7;");
  unsure.className = "pg-unsure";
  const map = el("div", "white-space:pre-wrap;word-break:break-word;line-height:1.9;outline:none;"
    + "font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:0.9rem;");
  map.className = "pg-heatmap";
  map.tabIndex = 0;
  map.setAttribute("role", "listbox");
  map.setAttribute("aria-label", "Answer tokens: click one, or move with the arrow keys");
  const fragment = document.createDocumentFragment();
  const buckets = bucketClasses(data);
  data.cells.forEach(([text, p, first, end], index) => {
    // styled by class (one style sheet, below): 2,000 inline styles cost the browser a parse each
    const cell = document.createElement("span");
    cell.className = "pg-token " + buckets(p);
    cell.dataset.pos = String(first);
    cell.dataset.cell = String(index);
    cell.setAttribute("role", "option");
    cell.textContent = text.replace(/\n/g, "\u21b5") || "\u200b";
    fragment.append(cell);
    if (text.includes("\n")) {
      for (let n = text.split("\n").length - 1; n > 0; n--) fragment.append(document.createElement("br"));
    }
    view.cells.push({ node: cell, text, p, first, end });
  });
  map.append(fragment);

  const legend = el("div", "display:flex;flex-wrap:wrap;align-items:center;gap:2px 4px;font-size:0.75rem;"
    + "margin-top:0.4rem;opacity:0.85;");
  legend.className = "pg-heatmap-legend";
  legend.append(el("span", "", data.legend));
  const keys = data.palette.map(([bound, fill]) => [`\u2265${Math.round(bound * 100)}%`, fill]);
  if (data.cells.some(([, p]) => p === null)) keys.push(["no probability (outside the server's top 20)", data.unknown]);
  for (const [label, fill] of keys) {
    legend.append(el("span", `background:${fill};color:${data.ink};border-radius:3px;padding:0 6px;white-space:nowrap;`,
      label));
  }
  const slider = el("label", "display:inline-flex;align-items:center;gap:4px;margin-left:auto;white-space:nowrap;");
  slider.append(el("span", "", "Unsure below"));
  const range = el("input", "width:7rem;");
  range.type = "range";
  range.min = "0";
  range.max = "100";
  range.step = "5";
  range.value = String(Math.round(data.threshold * 100));
  range.className = "pg-threshold";
  range.setAttribute("aria-label", "Unsure threshold (%)");
  const rangeValue = el("span", "font-variant-numeric:tabular-nums;", range.value + "%");
  slider.append(range, rangeValue);
  legend.append(slider);

  const tip = el("div", "position:absolute;z-index:5;pointer-events:none;max-width:22rem;padding:0.35rem 0.5rem;"
    + "border-radius:0.4rem;background:#1f2328;color:#f6f8fa;font-size:0.78rem;line-height:1.4;"
    + "box-shadow:0 2px 8px rgba(0,0,0,0.25);white-space:pre;font-family:ui-monospace,monospace;");
  tip.className = "pg-heatmap-tip";
  tip.hidden = true;

  const inspector = el("div", "margin-top:0.6rem;padding:0.5rem 0.75rem;border:1px solid rgba(127,127,127,0.25);"
    + "overflow-wrap:anywhere;max-width:100%;box-sizing:border-box;overflow-x:auto;"  // a narrow pane scrolls it
    + "border-radius:0.5rem;font-size:0.88rem;");
  inspector.className = "pg-inspector";

  root.append(unsure, map, legend, tip, inspector);
  view.count = data.cells.length;
  view.answer = data.answer;
  view.unsure = unsure;
  view.map = map;
  view.tip = tip;
  view.inspector = inspector;
  view.data = data;

  map.addEventListener("click", (event) => {
    const cell = event.target.closest(".pg-token");
    if (cell) select(view, Number(cell.dataset.cell));
  });
  // the arrow keys work wherever the focus is in the heatmap or its inspector (not in the slider)
  root.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (step === undefined || event.target.tagName === "INPUT") return;
    event.preventDefault();
    const at = view.selected < 0 ? (step > 0 ? 0 : view.cells.length - 1) : view.selected + step;
    select(view, Math.max(0, Math.min(view.cells.length - 1, at)));
  });
  map.addEventListener("mouseover", (event) => {
    const cell = event.target.closest(".pg-token");
    if (cell) hover(view, Number(cell.dataset.cell), cell);
  });
  map.addEventListener("mouseleave", () => { tip.hidden = true; });
  range.addEventListener("input", () => {
    view.threshold = Number(range.value) / 100;
    rangeValue.textContent = range.value + "%";
    outline(view);
  });

  outline(view);
  select(view, keep ? keep.selected : lowest(view), false);
  if (keep) {
    view.threshold = keep.threshold;
    range.value = String(Math.round(keep.threshold * 100));
    rangeValue.textContent = range.value + "%";
    outline(view);
  }
  return view;
}

function lowest(view) {
  let best = -1, bestP = 2;
  view.cells.forEach((cell, index) => {
    const p = cell.p === null ? 0 : cell.p;
    if (p < bestP) { best = index; bestP = p; }
  });
  return best;
}

function outline(view) {
  // tokens under the threshold get an outline, and the line above the answer names them
  const low = [];
  view.cells.forEach((cell, index) => {
    const under = (cell.p === null ? 0 : cell.p) < view.threshold;
    if (under || cell.node.classList.contains("pg-unsure-token")) cell.node.classList.toggle("pg-unsure-token", under);
    if (under) low.push(index);
  });
  view.unsure.replaceChildren();
  if (!low.length) {
    view.unsure.textContent = `The model was sure of every token (none under ${Math.round(view.threshold * 100)}%).`;
    return;
  }
  const places = low.length === 1 ? "1 place the model was unsure" : `${low.length} places the model was unsure`;
  view.unsure.append(el("span", "font-weight:600;", places + ": "));
  low.forEach((index, n) => {
    const cell = view.cells[index];
    const link = el("button", "background:none;border:none;padding:0;margin:0;font:inherit;cursor:pointer;"
      + "color:#0969da;text-decoration:underline;", `${shown(cell.text)} (${percent(cell.p)})`);
    link.type = "button";
    link.className = "pg-unsure-link";
    link.dataset.cell = String(index);
    link.addEventListener("click", () => select(view, index));
    if (n) view.unsure.append(document.createTextNode(", "));
    view.unsure.append(link);
  });
}

function hover(view, index, node) {
  const cell = view.cells[index];
  const lines = [`#${cell.first}  ${shown(cell.text)}  ${percent(cell.p)}`];
  const token = view.data.tokens[cell.first];
  for (const [text, lp] of token.a.slice(0, TIP_ALTERNATIVES)) lines.push(`  ${shown(text)}  ${percent(prob(lp))}`);
  if (!token.a.length) lines.push("  (no alternatives: ask for top_logprobs)");
  view.tip.textContent = lines.join("\n");
  const box = node.getBoundingClientRect(), base = view.root.getBoundingClientRect();
  view.tip.style.left = Math.max(0, Math.min(box.left - base.left, base.width - 240)) + "px";
  view.tip.style.top = (box.bottom - base.top + 4) + "px";
  view.tip.hidden = false;
}

function select(view, index, focus = true) {
  if (view.selected >= 0 && view.cells[view.selected]) {
    const old = view.cells[view.selected].node;
    old.removeAttribute("aria-selected");
  }
  view.selected = index;
  if (index < 0 || !view.cells[index]) {
    view.inspector.replaceChildren(el("div", "opacity:0.7;", "No tokens."));
    return;
  }
  const cell = view.cells[index];
  cell.node.setAttribute("aria-selected", "true");
  if (focus) {
    view.map.focus({ preventScroll: true });
    cell.node.scrollIntoView({ block: "nearest" });
  }
  inspect(view, cell);
}

function inspect(view, cell) {
  const box = view.inspector;
  box.replaceChildren();
  const size = cell.end - cell.first;
  const head = el("div", "margin-bottom:0.35rem;");
  head.className = "pg-inspector-head";
  head.append(el("span", "font-weight:600;", size > 1 ? `Tokens ${cell.first}-${cell.end - 1}: ` : `Position ${cell.first}: `));
  head.append(el("code", "font-size:0.95rem;", shown(cell.text)));
  if (size > 1) head.append(el("span", "opacity:0.75;", ` (one character in ${size} tokens)`));
  box.append(head);
  for (let position = cell.first; position < cell.end; position++) tokenPart(view, box, position, size > 1);
}

function tokenPart(view, box, position, split) {
  const token = view.data.tokens[position];
  const facts = el("div", "display:flex;flex-wrap:wrap;gap:0.25rem 1rem;margin:0.2rem 0;");
  facts.className = "pg-inspector-facts";
  const fact = (label, value) => {
    const item = el("span", "");
    item.append(el("span", "opacity:0.7;", label + " "), el("span", "font-weight:600;font-variant-numeric:tabular-nums;", value));
    facts.append(item);
  };
  if (split) fact("token", `#${position} ${token.t}`);
  const sampled = token.s !== undefined && token.s !== null;
  fact(sampled ? "model's probability" : "probability", percent(token.p));
  fact("logprob", token.lp === null ? "unknown" : token.lp.toFixed(3));
  if (token.e !== undefined) fact("entropy of the top-k", token.e.toFixed(2) + " bits");
  // the server's probability after its sampler chain (temperature, top_k, top_p, min_p)
  if (sampled) fact("after the sampler", percent(Math.exp(Math.min(token.s, 0))));
  const bytes = el("details", "display:inline;");
  bytes.append(el("summary", "cursor:pointer;opacity:0.8;", "bytes"),
    el("code", "word-break:break-all;", " " + (token.b || "(none)")));
  facts.append(bytes);
  box.append(facts);
  if (token.tail) {
    const flag = el("div", "color:#b42318;font-weight:600;margin:0.15rem 0;", "Drawn from the tail: "
      + token.tail);
    flag.className = "pg-tail";
    box.append(flag);
  }
  if (!token.a.length) {
    box.append(el("div", "opacity:0.7;", "No alternatives: ask for top_logprobs (1 to 20) in the Logprobs group."));
    return;
  }
  const table = el("table", "border-collapse:collapse;margin-top:0.25rem;font-size:0.85rem;width:100%;");
  table.className = "pg-alternatives";
  const header = el("tr");
  for (const name of ["rank", "token", "probability", "logprob", "bytes", ""]) {
    header.append(el("th", "text-align:left;padding:2px 8px;opacity:0.7;font-weight:500;white-space:nowrap;", name));
  }
  table.append(header);
  token.a.forEach(([text, lp, hex], rank) => {
    const p = prob(lp);
    const chosen = text === token.t;
    const row = el("tr", chosen ? "background:rgba(127,127,127,0.12);" : "");
    const bar = el("span", `display:inline-block;height:0.55rem;width:${Math.round((p || 0) * 60)}px;`
      + "background:#60a5fa;border-radius:2px;margin-right:6px;vertical-align:middle;");
    const probCell = el("td", "padding:2px 8px;white-space:nowrap;font-variant-numeric:tabular-nums;");
    probCell.append(bar, document.createTextNode(percent(p)));
    row.append(el("td", "padding:2px 8px;white-space:nowrap;", String(rank + 1)),
      el("td", "padding:2px 8px;font-family:ui-monospace,monospace;word-break:break-all;min-width:5rem;",
        shown(text) + (chosen ? "  (chosen)" : "")),
      probCell,
      el("td", "padding:2px 8px;font-variant-numeric:tabular-nums;white-space:nowrap;", lp === null ? "—" : lp.toFixed(3)),
      bytesCell(hex));
    const action = el("td", "padding:2px 8px;");
    if (!chosen && view.data.branch && view.data.branch.offered) {
      const go = el("button", "font:inherit;font-size:0.8rem;padding:1px 8px;border-radius:0.4rem;cursor:pointer;white-space:nowrap;"
        + "border:1px solid rgba(127,127,127,0.45);background:transparent;color:inherit;", "Continue with this token");
      go.type = "button";
      go.className = "pg-branch";
      go.addEventListener("click", () => view.setTrigger("branch", { position, rank, token: text }));
      action.append(go);
    }
    row.append(action);
    table.append(row);
  });
  box.append(table);
  if (view.data.branch && !view.data.branch.offered && view.data.branch.reason) {
    const why = el("div", "opacity:0.7;font-size:0.8rem;margin-top:0.25rem;", view.data.branch.reason);
    why.className = "pg-branch-why";
    box.append(why);
  }
}

function bytesCell(hex) {
  // long tokens have long byte lists: one line, cut with an ellipsis, all of it on hover
  const cell = el("td", "padding:2px 8px;font-family:ui-monospace,monospace;opacity:0.75;max-width:8rem;"
    + "overflow:hidden;text-overflow:ellipsis;white-space:nowrap;", hex);
  cell.setAttribute("title", hex);
  return cell;
}
