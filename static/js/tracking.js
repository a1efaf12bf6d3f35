/*
 * RecSite tracking snippet (vanilla JS, no dependencies).
 *
 * WHO RECORDS WHAT (so no action is ever counted twice):
 *   - this script (browser):  view, click, dwell, search
 *   - the server (Django):    add_to_cart, remove_from_cart (catalog/services/cart.py) and purchase
 *                             (catalog/services/orders.py). These happen through normal form posts, so
 *                             they are recorded even with JavaScript off. This script never sends them;
 *                             it only adds the remembered recommendation impression id to the
 *                             add-to-cart forms so the server-side event carries it.
 *
 * Configuration comes from data attributes on <body>:
 *   data-rs-endpoint   events URL (POST /api/v1/events)
 *   data-rs-visitor    visitor id (cookie rs_vid), data-rs-session: shopping session id (cookie rs_sid)
 *   data-rs-page       page kind: home, category, search, product, cart, checkout, account, other
 *   data-rs-product    on a product page: the product id (records a view, then dwell time)
 *   data-rs-price      on a product page: its price
 *   data-rs-search     on a search results page: the query (records a search)
 * Product links carry data-rs-product="<id>" and, when they come from a recommendation,
 * data-rs-impression="<impression uuid>".
 *
 * Delivery: events are queued in sessionStorage (so nothing is lost when the shopper navigates),
 * flushed every FLUSH_MS or when BATCH_SIZE are waiting, with fetch + X-CSRFToken; failures (network,
 * 429, 5xx) are retried with exponential backoff. When the page is hidden or unloaded the queue goes
 * out with navigator.sendBeacon as text/plain {"events": [...], "csrfmiddlewaretoken": "..."} (a
 * beacon cannot set headers; docs/API.md). Each event has a UUID event_id, so a re-send after an
 * uncertain failure is stored once (the API is idempotent on event_id).
 *
 * Other scripts may call window.RecSite.track(type, fields) (e.g. the chat widget) and
 * window.RecSite.flush().
 */
(function () {
  "use strict";

  var QUEUE_KEY = "rs_queue_v1";
  var IMPRESSIONS_KEY = "rs_impressions_v1";
  var FLUSH_MS = 3000;
  var BATCH_SIZE = 20;
  var MAX_QUEUE = 500;
  var MAX_ATTEMPTS = 8;
  var BACKOFF_BASE_MS = 1000;
  var BACKOFF_MAX_MS = 60000;
  var IMPRESSION_TTL_MS = 24 * 3600 * 1000;
  var MAX_IMPRESSIONS = 100;
  var MIN_DWELL_MS = 500;
  var BEACON_MAX_BYTES = 60000;

  var body = document.body;
  if (!body) return;
  var cfg = {
    endpoint: body.getAttribute("data-rs-endpoint") || "/api/v1/events",
    visitor: body.getAttribute("data-rs-visitor") || readCookie("rs_vid") || "",
    session: body.getAttribute("data-rs-session") || readCookie("rs_sid") || "",
    page: body.getAttribute("data-rs-page") || "other",
  };

  // ---- small helpers --------------------------------------------------------------------------

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return "";
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return readCookie("csrftoken") || (meta ? meta.getAttribute("content") : "") || "";
  }

  function uuid4() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    var hex = [];
    for (var j = 0; j < 16; j++) hex.push((bytes[j] + 0x100).toString(16).slice(1));
    return (
      hex.slice(0, 4).join("") + "-" + hex.slice(4, 6).join("") + "-" + hex.slice(6, 8).join("") + "-" +
      hex.slice(8, 10).join("") + "-" + hex.slice(10, 16).join("")
    );
  }

  function device() {
    var ua = navigator.userAgent || "";
    if (/iPad|Tablet/i.test(ua)) return "tablet";
    if (/Mobi|Android|iPhone/i.test(ua)) return "mobile";
    return window.matchMedia && window.matchMedia("(max-width: 640px)").matches ? "mobile" : "desktop";
  }

  function storageGet(store, key, fallback) {
    try {
      var raw = store.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) {
      return fallback; // storage disabled or corrupt: work in memory
    }
  }

  function storageSet(store, key, value) {
    try {
      store.setItem(key, JSON.stringify(value));
    } catch (e) {
      /* quota exceeded or storage disabled: the in-memory queue still works for this page */
    }
  }

  // ---- impression memory: product id -> impression id (click on a recommendation) ---------------
  // localStorage, so a recommendation opened in a new tab still carries its impression id.

  function impressionsLoad() {
    var map = storageGet(window.localStorage, IMPRESSIONS_KEY, {});
    return map && typeof map === "object" ? map : {};
  }

  function impressionRemember(productId, impressionId) {
    if (!productId || !impressionId) return;
    var map = impressionsLoad();
    var now = Date.now();
    map[String(productId)] = { id: impressionId, at: now };
    var keys = Object.keys(map).filter(function (k) {
      return map[k] && now - map[k].at < IMPRESSION_TTL_MS;
    });
    keys.sort(function (a, b) { return map[b].at - map[a].at; });
    var kept = {};
    keys.slice(0, MAX_IMPRESSIONS).forEach(function (k) { kept[k] = map[k]; });
    storageSet(window.localStorage, IMPRESSIONS_KEY, kept);
  }

  function impressionFor(productId) {
    var entry = impressionsLoad()[String(productId)];
    if (!entry || Date.now() - entry.at > IMPRESSION_TTL_MS) return null;
    return entry.id;
  }

  // ---- the queue -------------------------------------------------------------------------------
  // Each entry: {event: {...}, attempts: n}. Persisted after every change.

  var queue = storageGet(window.sessionStorage, QUEUE_KEY, []);
  if (!Array.isArray(queue)) queue = [];
  var sending = false;
  var retryAt = 0;
  var failures = 0;
  var timer = null;

  function persist() {
    storageSet(window.sessionStorage, QUEUE_KEY, queue);
  }

  function track(type, fields) {
    var f = fields || {};
    var productId = f.product_id != null ? Number(f.product_id) : null;
    var event = {
      event_id: uuid4(),
      type: type,
      visitor_id: cfg.visitor,
      session_id: cfg.session,
      timestamp: new Date().toISOString(),
      context: {
        page: (location.pathname + location.search).slice(0, 200),
        device: device(),
        referrer: (document.referrer || "").slice(0, 300),
        page_type: cfg.page,
      },
    };
    if (productId) event.product_id = productId;
    ["quantity", "price", "dwell_ms", "query"].forEach(function (k) {
      if (f[k] != null && f[k] !== "") event[k] = f[k];
    });
    var impression = f.impression_id || (productId ? impressionFor(productId) : null);
    if (impression) event.impression_id = impression;
    queue.push({ event: event, attempts: 0 });
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE); // a dead endpoint must not fill storage
    persist();
    if (queue.length >= BATCH_SIZE) flush();
    return event.event_id;
  }

  function backoffDelay() {
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, failures));
    return delay / 2 + Math.random() * (delay / 2); // jitter: many tabs must not retry in step
  }

  function flush() {
    if (sending || !queue.length || Date.now() < retryAt) return;
    if (!window.fetch) {
      beaconFlush();
      return;
    }
    var batch = queue.slice(0, BATCH_SIZE);
    var ids = batch.map(function (entry) { return entry.event.event_id; });
    sending = true;
    window
      .fetch(cfg.endpoint, {
        method: "POST",
        credentials: "same-origin",
        keepalive: true,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(batch.map(function (entry) { return entry.event; })),
      })
      .then(function (response) {
        return response
          .json()
          .catch(function () { return null; })
          .then(function (data) { settle(ids, response.status, data); });
      })
      .catch(function () {
        settle(ids, 0, null); // network error: keep and retry
      })
      .then(function () {
        sending = false;
      });
  }

  function removeIds(ids) {
    var gone = {};
    ids.forEach(function (id) { gone[id] = true; });
    queue = queue.filter(function (entry) { return !gone[entry.event.event_id]; });
    persist();
  }

  function settle(ids, status, data) {
    var answered = data && Array.isArray(data.results);
    if (status === 200 || status === 207 || (status === 400 && answered)) {
      // Every event got an answer: accepted and duplicates are done; rejected ones would be rejected
      // again, so they are dropped with a console warning naming the reason.
      if (answered) {
        data.results.forEach(function (r) {
          if (r.status === "rejected" && window.console) console.warn("RecSite event rejected", r.event_id, r.errors);
        });
      }
      removeIds(ids);
      failures = 0;
      retryAt = 0;
      if (queue.length >= BATCH_SIZE) setTimeout(flush, 0);
      return;
    }
    if (status === 400 || status === 413 || status === 415) {
      // The whole request was unusable; retrying the same bytes cannot help.
      if (window.console) console.warn("RecSite events dropped:", status, data && data.error);
      removeIds(ids);
      return;
    }
    // 0 (network), 403 (e.g. CSRF token rotated by a login in another tab), 429, 5xx: retry later.
    failures += 1;
    retryAt = Date.now() + backoffDelay();
    var give_up = [];
    queue.forEach(function (entry) {
      if (ids.indexOf(entry.event.event_id) >= 0) {
        entry.attempts += 1;
        if (entry.attempts >= MAX_ATTEMPTS) give_up.push(entry.event.event_id);
      }
    });
    if (give_up.length && window.console) console.warn("RecSite: giving up on", give_up.length, "events after", MAX_ATTEMPTS, "attempts");
    removeIds(give_up);
    persist();
  }

  // On hide/unload: the whole queue goes by beacon (fetch may be cancelled with the page).
  function beaconFlush() {
    if (!queue.length) return;
    if (!navigator.sendBeacon) {
      flush();
      return;
    }
    var batch = [];
    var size = 0;
    for (var i = 0; i < queue.length && batch.length < 500; i++) {
      var json = JSON.stringify(queue[i].event);
      if (size + json.length > BEACON_MAX_BYTES) break;
      batch.push(queue[i]);
      size += json.length + 1;
    }
    var payload = JSON.stringify({
      events: batch.map(function (entry) { return entry.event; }),
      csrfmiddlewaretoken: csrfToken(),
    });
    var blob = new Blob([payload], { type: "text/plain" });
    var ok = false;
    try {
      ok = navigator.sendBeacon(cfg.endpoint, blob);
    } catch (e) {
      ok = false;
    }
    // Queued by the browser: consider them sent. If the browser refused, they stay in sessionStorage
    // and the next page of this tab sends them.
    if (ok) removeIds(batch.map(function (entry) { return entry.event.event_id; }));
  }

  // ---- what gets recorded ----------------------------------------------------------------------

  // 1. Product page: a view now, then dwell time (only while the page is visible).
  var productId = body.getAttribute("data-rs-product");
  var price = body.getAttribute("data-rs-price");
  var visibleSince = document.visibilityState === "visible" ? Date.now() : null;
  var dwellAccumulated = 0;

  function dwellReport() {
    if (!productId) return;
    if (visibleSince !== null) {
      dwellAccumulated += Date.now() - visibleSince;
      visibleSince = null;
    }
    // Each hidden period reports the visible time since the last report; consumers sum dwell_ms per
    // (session, product).
    if (dwellAccumulated >= MIN_DWELL_MS) track("dwell", { product_id: productId, dwell_ms: Math.round(dwellAccumulated) });
    dwellAccumulated = 0;
  }

  if (productId) track("view", { product_id: productId, price: price || null });

  // 2. Search results page: the query (not again when the shopper merely reloads the page).
  var query = body.getAttribute("data-rs-search");
  if (query) {
    var nav = window.performance && performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
    if (!nav || nav.type !== "reload") track("search", { query: query.slice(0, 255) });
  }

  // 3. Clicks on product links, anywhere (including recommendation widgets that HTMX loads later).
  document.addEventListener(
    "click",
    function (e) {
      var target = e.target && e.target.closest ? e.target.closest("a[data-rs-product]") : null;
      if (!target) return;
      var pid = target.getAttribute("data-rs-product");
      var impression = target.getAttribute("data-rs-impression") || "";
      if (impression) impressionRemember(pid, impression);
      track("click", { product_id: pid, impression_id: impression || null });
    },
    true
  );

  // 4. Add-to-cart forms: the server records the event; we attach the remembered impression id and,
  // for quick-add buttons on listings, bring the shopper back to the page they were on.
  document.addEventListener(
    "submit",
    function (e) {
      var form = e.target;
      if (!form || !form.getAttribute || !form.hasAttribute("data-rs-add-to-cart")) return;
      var pid = form.getAttribute("data-rs-add-to-cart");
      var field = form.querySelector('input[name="impression_id"]');
      if (field && !field.value) {
        var remembered = impressionFor(pid);
        if (remembered) field.value = remembered;
      }
      var next = form.querySelector('input[name="next"][data-rs-stay]');
      if (next && !next.value) next.value = location.pathname + location.search;
      beaconFlush(); // the page is about to change
    },
    true
  );

  // 5. Leaving or hiding the page: dwell, then everything queued goes by beacon.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      dwellReport();
      beaconFlush();
    } else if (productId) {
      visibleSince = Date.now();
    }
  });
  window.addEventListener("pagehide", function () {
    dwellReport();
    beaconFlush();
  });
  window.addEventListener("pageshow", function (e) {
    // Back/forward cache: the page is shown again without reloading; count the visible time anew.
    if (e.persisted && productId && document.visibilityState === "visible") visibleSince = Date.now();
  });

  timer = setInterval(flush, FLUSH_MS);
  if (queue.length) setTimeout(flush, 200); // leftovers from the previous page

  window.RecSite = {
    track: track,
    flush: flush,
    pending: function () { return queue.length; },
    impressionFor: impressionFor,
    config: cfg,
  };
})();
