/* Shopping-assistant chat widget: a WebSocket to /ws/chat/ (Django Channels).
 * Recommended items are rendered as links with data-rs-product / data-rs-impression, so the tracking
 * snippet attributes clicks on them like any recommendation. Reconnects with backoff. */
(function () {
  "use strict";
  var root = document.getElementById("rs-chat");
  if (!root || !window.WebSocket) return;
  var panel = root.querySelector(".rs-chat-panel");
  var toggle = root.querySelector(".rs-chat-toggle");
  var log = root.querySelector(".rs-chat-log");
  var form = root.querySelector(".rs-chat-form");
  var input = form.querySelector("input");
  var ws = null, backoff = 500, pending = [], conversationId = sessionStorage.getItem("rs_chat_id");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }
  function say(role, text) {
    var m = el("div", "rs-msg rs-msg-" + role, text);
    log.appendChild(m);
    log.scrollTop = log.scrollHeight;
    return m;
  }
  function showItems(items) {
    if (!items || !items.length) return;
    var grid = el("div", "rs-chat-items");
    items.forEach(function (it) {
      var a = el("a", "rs-chat-item");
      a.href = it.url;
      a.setAttribute("data-rs-product", it.product_id);
      if (it.impression_id) a.setAttribute("data-rs-impression", it.impression_id);
      var img = document.createElement("img");
      img.src = it.image; img.alt = "";
      a.appendChild(img);
      a.appendChild(el("div", "", it.title));
      a.appendChild(el("div", "price", it.price + " " + it.currency));
      a.appendChild(el("div", "reason", it.reason));
      grid.appendChild(a);
    });
    log.appendChild(grid);
    log.scrollTop = log.scrollHeight;
  }
  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + root.getAttribute("data-ws-path"));
    ws.onopen = function () {
      backoff = 500;
      while (pending.length) ws.send(pending.shift());
    };
    ws.onmessage = function (e) {
      var msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      if (msg.type === "reply") {
        conversationId = msg.conversation_id;
        sessionStorage.setItem("rs_chat_id", conversationId);
        say("assistant", msg.text);
        showItems(msg.items);
      } else if (msg.type === "error") {
        say("error", msg.error);
      }
    };
    ws.onclose = function () {
      ws = null;
      setTimeout(function () { if (!panel.hidden) connect(); }, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }
  function send(text) {
    var frame = JSON.stringify({ type: "message", text: text, conversation_id: conversationId || undefined });
    if (ws && ws.readyState === 1) ws.send(frame); else { pending.push(frame); if (!ws) connect(); }
  }
  function open(show) {
    panel.hidden = !show;
    toggle.setAttribute("aria-expanded", String(show));
    toggle.hidden = show;
    if (show) {
      if (!ws) connect();
      if (!log.childElementCount) say("assistant", "Hi! What are you looking for today?");
      input.focus();
    }
  }
  toggle.addEventListener("click", function () { open(true); });
  root.querySelector(".rs-chat-close").addEventListener("click", function () { open(false); });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    say("user", text);
    send(text);
    input.value = "";
  });
})();
