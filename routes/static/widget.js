/* Relais widget: the content that serves a page's micro-moment, in one tag.

  <script async src="https://relais.example/widget.js"></script>
  <relais-moment key="rk_…" moment="desirability" products="homelive" language="fr" limit="3"></relais-moment>

Attributes: key (a widget key made for this page's origin), moment (discovery, desirability, technical_validation…)
or query (a customer's words: the moment is then detected; with a moment, they refine it), products and language
(filters, comma-separated; language defaults to <html lang>, and chooses French or English labels), limit (1-10,
default 3), api (default: where this script comes from), target (of the links, default _blank), label (the list's
accessible name). The element's children are its fallback: shown without JavaScript, and when there is nothing to
show (API down, timeout, a key refused: then a console warning says why; never an error box).
Theme with CSS custom properties on the element: --relais-accent, --relais-font, --relais-radius, --relais-text,
--relais-muted, --relais-bg, --relais-border, --relais-gap, --relais-card-width; or ::part(list|card|link|title|
meta|author|thumbnail). The element gets data-state="ready", "empty" or "failed" once it knows.
No framework, no build step; safe to include twice; styles are constructable stylesheets (no inline style: works
under a strict Content-Security-Policy). */
(() => {
  "use strict";
  if (!window.customElements || customElements.get("relais-moment")) return; // included twice: one definition

  const TIMEOUT_MS = 3000; // past this the widget stays empty: the page must not wait for us
  const NEAR = "300px"; // fetch when the element is this close to the viewport
  const SEEN_RATIO = 0.5; // an impression: half of the card visible…
  const SEEN_MS = 1000; // …for a second (the IAB's viewable impression)
  const FLUSH_MS = 4000; // impressions wait at most this long to be sent together
  const MAX_BATCH = 50; // a keepalive body must stay under 64 KB
  const script = document.currentScript || document.querySelector('script[src*="/widget.js"]');
  const BASE = !(script && script.src)
    ? location.origin
    : /\/widget\.js([?#].*)?$/.test(script.src)
      ? script.src.replace(/\/widget\.js([?#].*)?$/, "") // served under a path prefix: the API is there too
      : new URL(script.src).origin;

  const LABELS = {
    fr: {
      list: "Contenus recommandés",
      by: "par",
      newTab: "(nouvel onglet)",
      formats: {
        article: "Article", blog_post: "Article de blog", tweet: "Tweet", instagram_post: "Post Instagram",
        video: "Vidéo", infographic: "Infographie", testimonial: "Témoignage", comparison_test: "Comparatif",
        tutorial: "Tutoriel", review: "Test",
      },
    },
    en: {
      list: "Recommended content",
      by: "by",
      newTab: "(new tab)",
      formats: {
        article: "Article", blog_post: "Blog post", tweet: "Tweet", instagram_post: "Instagram post", video: "Video",
        infographic: "Infographic", testimonial: "Testimonial", comparison_test: "Comparison", tutorial: "Tutorial",
        review: "Review",
      },
    },
  };
  const NETWORKS = {
    youtube: "YouTube", instagram: "Instagram", tiktok: "TikTok", twitter: "X", x: "X", facebook: "Facebook",
    linkedin: "LinkedIn", blog: "Blog", web: "Web", pinterest: "Pinterest", twitch: "Twitch",
  };

  const CSS = `
:host{display:block;font-family:var(--relais-font,inherit);color:var(--relais-text,inherit)}
:host([hidden]){display:none}
ul{list-style:none;margin:0;padding:0;display:grid;gap:var(--relais-gap,1rem);
grid-template-columns:repeat(auto-fill,minmax(min(100%,var(--relais-card-width,15rem)),1fr))}
li{margin:0;min-width:0}
.card{display:flex;flex-direction:column;gap:.4rem;box-sizing:border-box;height:100%;padding:var(--relais-padding,1rem);
border:1px solid var(--relais-border,#d6d6d6);border-radius:var(--relais-radius,.5rem);
background:var(--relais-bg,#fff);color:inherit;text-decoration:none;overflow-wrap:anywhere}
a.card:hover{border-color:var(--relais-accent,#0b57d0)}
a.card:focus-visible{outline:3px solid var(--relais-accent,#0b57d0);outline-offset:2px}
.thumb{order:-2;display:block;width:100%;aspect-ratio:16/9;object-fit:cover;border-radius:calc(var(--relais-radius,.5rem)/2)}
.meta{order:-1;font-size:.75em;font-weight:700;letter-spacing:.04em;text-transform:uppercase;
color:var(--relais-accent-text,var(--relais-accent,#0b57d0))}
.title{font-weight:700;line-height:1.3}
.author{margin-top:auto;font-size:.875em;color:var(--relais-muted,#595959)}
.sr{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (prefers-reduced-motion:no-preference){.card{transition:border-color .15s}}`;

  let sheet = null;
  function adopt(root) { // the <style> element it had to add, if any
    let style = null;
    if ("adoptedStyleSheets" in Document.prototype && "replaceSync" in CSSStyleSheet.prototype) {
      if (!sheet) {
        sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
      }
      root.adoptedStyleSheets = [sheet];
    } else {
      // Older browsers: a <style> element, which a strict CSP (style-src without 'unsafe-inline') refuses.
      style = document.createElement("style");
      style.textContent = CSS;
    }
    return style;
  }

  const warned = new Set();
  function warn(message) {
    if (warned.has(message)) return;
    warned.add(message);
    console.warn(`Relais widget: ${message}`);
  }

  // -- fetching: once per request per page view, with a timeout --------------------------------------------
  class Failure extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  const answers = new Map(); // request → promise of {data, requestId}: same request, one fetch per page view

  function fetchOnce(req) {
    if (!answers.has(req.id)) answers.set(req.id, fetchAnswer(req));
    return answers.get(req.id);
  }

  async function fetchAnswer(req) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(req.url, { ...req.init, mode: "cors", credentials: "omit", signal: abort.signal });
      if (!res.ok) {
        let said = "";
        try {
          said = ((await res.json()).error || {}).message || "";
        } catch (e) {
          // not our JSON (a proxy's page): the status says enough
        }
        throw new Failure(res.status, said);
      }
      return { data: await res.json(), requestId: res.headers.get("X-Request-ID") };
    } finally {
      clearTimeout(timer);
    }
  }

  function reason(error, req) {
    const here = location.origin;
    if (error.name === "AbortError") return `no answer from ${req.api} within ${TIMEOUT_MS / 1000} s.`;
    if (!(error instanceof Failure)) {
      // A network error and a CORS refusal look the same from here (the browser hides which it was).
      return `could not reach ${req.api} (network error, or the API refused this origin: is the key allowed on ${here}?).`;
    }
    const said = error.message ? ` The API said: ${error.message}` : "";
    if (error.status === 403) return `this widget key is not allowed on this origin (${here}) (403).${said}`;
    if (error.status === 401) return `the key is missing, unknown or revoked (401).${said}`;
    if (error.status === 429) return `too many requests for this key (429).${said}`;
    return `${req.api} answered ${error.status}.${said}`;
  }

  // -- events: impressions when seen, clicks when followed -------------------------------------------------
  // Sent with fetch(…, {keepalive: true}) rather than navigator.sendBeacon: POST /v1/events authenticates with
  // the X-API-Key header and takes JSON, and a beacon can set neither a header nor (without a preflight it never
  // makes) a JSON content type; putting the key in the URL would log it everywhere. A keepalive request, like a
  // beacon, is sent without delaying navigation and outlives the page (it may be flushed from pagehide), and it
  // can carry headers. Impressions are batched (every few seconds, and when the page is hidden or left); a click
  // is sent at once, since a navigation follows it.
  const queues = new Map(); // api + key → {api, key, events}
  let flushTimer = 0;

  function randomId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function track(dest, type, fields) {
    const id = `${dest.api} ${dest.key}`;
    if (!queues.has(id)) queues.set(id, { api: dest.api, key: dest.key, events: [] });
    const queue = queues.get(id);
    queue.events.push({ event_id: randomId(), type, item_kind: "content", ...fields });
    if (type === "click" || queue.events.length >= MAX_BATCH) send(queue);
    else if (!flushTimer) flushTimer = setTimeout(flushAll, FLUSH_MS);
  }

  function send(queue) {
    while (queue.events.length) {
      const headers = { "Content-Type": "application/json" };
      if (queue.key) headers["X-API-Key"] = queue.key;
      const body = JSON.stringify({ events: queue.events.splice(0, MAX_BATCH) });
      const init = { method: "POST", keepalive: true, mode: "cors", credentials: "omit", headers, body };
      fetch(`${queue.api}/v1/events`, init).then(
        (res) => res.ok || warn(`${queue.api} refused events (${res.status}).`),
        () => warn(`could not send events to ${queue.api}.`),
      );
    }
  }

  function flushAll() {
    clearTimeout(flushTimer);
    flushTimer = 0;
    queues.forEach(send);
  }

  addEventListener("pagehide", flushAll);
  document.addEventListener("visibilitychange", () => document.visibilityState === "hidden" && flushAll());

  const watched = new WeakMap(); // card → {dest, fields, timer}
  let seen = null;

  function watchSeen(card, info) {
    if (!("IntersectionObserver" in window)) return;
    if (!seen) {
      seen = new IntersectionObserver(
        (entries) => {
          for (const entry of entries) {
            const found = watched.get(entry.target);
            if (!found) continue;
            clearTimeout(found.timer);
            if (entry.isIntersecting && entry.intersectionRatio >= SEEN_RATIO) {
              found.timer = setTimeout(() => {
                seen.unobserve(entry.target); // once per card per page view
                watched.delete(entry.target);
                track(found.dest, "impression", found.fields);
              }, SEEN_MS);
            }
          }
        },
        { threshold: [0, SEEN_RATIO] },
      );
    }
    watched.set(card, info);
    seen.observe(card);
  }

  function unwatchSeen(card) {
    const found = watched.get(card);
    if (found) clearTimeout(found.timer);
    watched.delete(card);
    if (seen) seen.unobserve(card);
  }

  // -- the element -----------------------------------------------------------------------------------------
  function element(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  function webUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      const url = new URL(value, location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function list(value) {
    return value.split(",").map((v) => v.trim()).filter(Boolean);
  }

  class RelaisMoment extends HTMLElement {
    static get observedAttributes() {
      return ["key", "moment", "query", "products", "language", "limit", "api", "target", "label"];
    }

    connectedCallback() {
      if (!this.shadowRoot) {
        this.styles = [adopt(this.attachShadow({ mode: "open" }))].filter(Boolean);
        this.shadowRoot.append(...this.styles, element("slot")); // the fallback, until there are cards
        this.cards = [];
        this.loads = 0;
      }
      this.watchNear();
    }

    disconnectedCallback() {
      this.unwatchNear();
    }

    attributeChangedCallback(name, before, after) {
      if (before !== after && this.started) {
        this.started = false; // a new request: fetched when next near the viewport
        this.watchNear();
      }
    }

    watchNear() {
      if (this.started || !this.isConnected) return;
      if (!("IntersectionObserver" in window)) return this.load();
      this.unwatchNear();
      this.near = new IntersectionObserver(
        (entries) => {
          if (!entries.some((e) => e.isIntersecting)) return;
          this.unwatchNear();
          this.load();
        },
        { rootMargin: NEAR },
      );
      this.near.observe(this);
    }

    unwatchNear() {
      if (this.near) this.near.disconnect();
      this.near = null;
    }

    request() {
      const attr = (name) => (this.getAttribute(name) || "").trim();
      const api = webUrl(attr("api") || BASE);
      if (!api) throw new Error(`api="${attr("api")}" is not an http(s) address.`);
      const language = (attr("language") || document.documentElement.lang || "").slice(0, 2).toLowerCase();
      const limit = Math.min(10, Math.max(1, parseInt(attr("limit"), 10) || 3));
      const [key, moment, query, products] = [attr("key"), attr("moment"), attr("query"), attr("products")];
      const req = { api: api.replace(/\/+$/, ""), key, moment, language, headers: {} };
      if (key) req.headers["X-API-Key"] = key;
      if (query) {
        const filters = {};
        if (language) filters.language = [language];
        if (products) filters.products = list(products);
        const body = { text: query, types: ["content"], limit, filters };
        if (moment) body.moment = moment;
        req.url = `${req.api}/v1/match`;
        req.init = { method: "POST", headers: { ...req.headers, "Content-Type": "application/json" } };
        req.init.body = JSON.stringify(body);
      } else {
        if (!moment) throw new Error('give a moment (moment="discovery") or a customer\'s words (query="…").');
        const params = new URLSearchParams({ moment, types: "content", limit: String(limit) });
        if (products) params.set("products", list(products).join(","));
        if (language) params.set("language", language);
        req.url = `${req.api}/v1/match?${params}`;
        req.init = { method: "GET", headers: req.headers };
      }
      req.id = `${req.url} ${req.init.body || ""} ${key}`;
      return req;
    }

    async load() {
      this.started = true;
      const load = ++this.loads;
      let req;
      let answer;
      try {
        req = this.request();
      } catch (e) {
        warn(e.message);
        return this.show("failed");
      }
      try {
        answer = await fetchOnce(req);
      } catch (e) {
        if (load !== this.loads) return; // the attributes changed meanwhile: a newer load decides
        warn(reason(e, req));
        return this.show("failed");
      }
      if (load === this.loads) this.render(answer, req);
    }

    show(state, content) {
      this.cards.forEach(unwatchSeen);
      this.cards = [];
      this.shadowRoot.replaceChildren(...this.styles, content || element("slot"));
      this.setAttribute("data-state", state);
    }

    render({ data, requestId }, req) {
      const items = data && Array.isArray(data.content) ? data.content : [];
      if (!items.length) return this.show("empty");
      const words = LABELS[req.language] || LABELS.en;
      const target = this.getAttribute("target") || "_blank";
      const ul = element("ul", { role: "list", part: "list", "aria-label": this.getAttribute("label") || words.list });
      const dest = { api: req.api, key: req.key };
      const cards = [];
      items.forEach((item, index) => {
        const fields = { item_id: item.id, rank: item.rank || index + 1 };
        if (requestId) fields.request_id = requestId;
        if (data.moment || req.moment) fields.moment = data.moment || req.moment;
        const href = webUrl(item.url);
        const card = href
          ? element("a", { class: "card", part: "link", href, target, rel: "noopener" })
          : element("div", { class: "card", part: "link" });
        const title = item.title || (item.excerpt || "").slice(0, 120);
        card.append(element("span", { class: "title", part: "title" }, title));
        const format = words.formats[item.format] || item.format;
        const network = NETWORKS[item.network] || item.network;
        card.append(element("span", { class: "meta", part: "meta" }, [format, network].filter(Boolean).join(" · ")));
        const author = item.influencer && item.influencer.name;
        if (author) card.append(element("span", { class: "author", part: "author" }, `${words.by} ${author}`));
        const extra = item.extra || {};
        const thumbnail = webUrl(item.thumbnail || item.image || extra.thumbnail || extra.image);
        if (thumbnail) {
          const img = element("img", { class: "thumb", part: "thumbnail", src: thumbnail, alt: "" });
          img.loading = "lazy";
          img.decoding = "async";
          img.addEventListener("error", () => img.remove()); // a broken image is not worth a hole in the card
          card.append(img);
        }
        if (href && target === "_blank") card.append(element("span", { class: "sr" }, words.newTab));
        if (href) {
          const followed = (event) => (event.type === "click" || event.button === 1) && track(dest, "click", fields);
          card.addEventListener("click", followed);
          card.addEventListener("auxclick", followed); // the middle button: opened in a new tab
        }
        const li = element("li", { part: "card", "data-item": item.id });
        li.append(card);
        ul.append(li);
        cards.push([li, fields]);
      });
      this.show("ready", ul);
      for (const [li, fields] of cards) {
        watchSeen(li, { dest, fields });
        this.cards.push(li);
      }
    }
  }

  customElements.define("relais-moment", RelaisMoment);
})();
