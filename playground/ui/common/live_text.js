// The live answer box of one place (playground/ui/common/live_view.py's live_text). It stays on
// the page, connected by a WebSocket to the place's live channel
// (playground/ui/common/live_channel.py), and sets the text itself as it arrives, so a token
// reaches the screen without Streamlit redrawing the page. Text goes in with textContent only:
// model output is never parsed as HTML. Redraws at most every REDRAW_MS; a new answer's first
// text and an answer's end at once. It addresses Streamlit's page only through the st-key-*
// class Streamlit documents for a keyed element (data.holder: the class of its own box).
const REDRAW_MS = 55; // 18 a second: under the 20 the page may redraw, with room for timer jitter
// A dropped connection is tried again after RETRY_MS, then twice as long each time it fails
// again, at most RETRY_MAX_MS: an app that is gone for good is not asked every second for ever.
const RETRY_MS = 1000;
const RETRY_MAX_MS = 30000;

export default function (component) {
  const { data, parentElement } = component;
  let view = parentElement.__live;
  if (!view) {
    const caption = document.createElement("div");
    caption.setAttribute("style", "font-size:0.875rem;opacity:0.6;margin-bottom:0.25rem;");
    const box = document.createElement("div");
    box.className = "pg-answer";
    box.setAttribute("style", data.style);
    const text = document.createTextNode("");
    const cursor = document.createElement("span");
    cursor.style.opacity = "0.5";
    cursor.textContent = "\u258c";
    box.append(text, cursor);
    const root = document.createElement("div");
    root.append(caption, box);
    parentElement.append(root);
    view = parentElement.__live = {
      root, caption, text, cursor, url: null, socket: null, answer: "", ended: false, channelRun: 0,
      retryMs: RETRY_MS, retry: null,
    };
    root.hidden = true;
  }
  view.caption.textContent = data.caption || "";
  view.caption.hidden = !data.caption;
  // Which run this place shows: the page's redraw says (run n, live or not), and so does the
  // channel when it starts an answer (run n, live); the newer word wins. So an answer shows as
  // soon as its text comes, before the page is redrawn, and goes when the page shows the
  // finished run, even if a redraw in between was skipped.
  view.pageRun = data.run;
  view.pageLive = data.live;
  view.streaming = data.cursor;
  view.holder = data.holder;
  update(view);
  if (view.url !== data.url) { // a new channel (a new session): its runs count from 1 again
    stop(view);
    view.url = data.url;
    view.channelRun = 0;
    view.answer = "";
    view.retryMs = RETRY_MS;
    read(view, data.url);
  }
  return () => stop(view);
}

function visible(view) {
  return view.channelRun > view.pageRun || view.pageLive;
}

function update(view) {
  // Streamlit's box around the element (the one with its key's class) takes a gap in the page's
  // layout even when empty: it goes with the answer.
  const holder = view.holder ? view.root.closest("." + view.holder) : null;
  if (!visible(view)) {
    view.root.hidden = true;
    if (holder) holder.style.display = "none";
    view.text.data = ""; // no stale copy of the answer left in the page
    return;
  }
  if (holder) holder.style.display = "";
  // The page can speak of a run before the channel starts it (the first text is slow to come):
  // nothing of the last answer shows meanwhile.
  view.text.data = view.channelRun >= view.pageRun ? view.answer : "";
  view.root.hidden = false;
  view.cursor.hidden = view.ended || !view.streaming;
}

function stop(view) {
  const socket = view.socket;
  view.socket = null;
  view.url = null;
  if (view.retry !== null) clearTimeout(view.retry);
  view.retry = null;
  if (socket) socket.close();
}

function read(view, url) {
  const address = new URL(url, window.location.href);
  address.protocol = address.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(address);
  let drawnAt = 0, timer = null;
  const draw = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    drawnAt = performance.now();
    update(view);
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    let now = false;
    if ("run" in message) { // a new answer starts here
      view.channelRun = message.run;
      view.ended = false;
      now = true;
    }
    if ("text" in message) {
      now = now || !view.answer;
      view.answer = message.text;
    }
    if ("more" in message) {
      now = now || !view.answer;
      view.answer += message.more;
    }
    if (message.end) view.ended = now = true;
    if (now) return draw();
    if (timer === null) timer = setTimeout(draw, Math.max(0, REDRAW_MS - (performance.now() - drawnAt)));
  };
  socket.onopen = () => {
    if (view.socket === socket) view.retryMs = RETRY_MS; // connected: the next drop starts again at 1 s
  };
  // Dropped (the app restarted, the network blinked): connect again while this place still
  // wants it, each failure waiting twice as long as the last.
  socket.onclose = (event) => {
    if (event.code === 4404) return; // the app no longer knows this channel: the page will draw a new one
    if (view.socket !== socket) return; // closed by stop(): another channel, or the box went
    const wait = view.retryMs;
    view.retryMs = Math.min(wait * 2, RETRY_MAX_MS);
    view.retry = setTimeout(() => {
      view.retry = null;
      if (view.socket === socket && view.url) read(view, view.url);
    }, wait);
  };
  view.socket = socket;
}
