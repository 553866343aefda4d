/* The planner's page (/planner): a brief -> a plan per moment and category -> edits -> activations and a CSV,
 * with KPI charts. No framework and no build step; Chart.js is vendored (static/vendor). Every text that comes
 * from the API is set as text, never as HTML. */
(() => {
  "use strict";

  const CATEGORIES = ["statutory", "partner", "affinity", "customer"];
  const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C510A"];

  const WORDS = {
    fr: {
      title: "Relais — planificateur de campagne", heading: "Planificateur de campagne", skip: "Aller au contenu",
      sections: "Sections", nav_brief: "Brief", nav_plan: "Plan", nav_kpis: "Indicateurs",
      noscript: "Cette page a besoin de JavaScript : elle appelle l'API Relais.",
      key_title: "Clé d'API", key_label: "Clé planificateur ou administrateur", key_use: "Utiliser",
      key_forget: "Oublier",
      key_help: "Gardée dans cet onglet seulement (sessionStorage), envoyée à chaque appel de l'API.",
      key_needed: "Une clé planificateur ou administrateur est nécessaire.",
      brief_title: "Brief", brief_label: "Ce que dit la campagne", products_label: "Produits (séparés par des virgules)",
      campaign_label: "Campagne", campaign_none: "Aucune", languages_label: "Langues (fr, en…)",
      networks_label: "Réseaux (instagram, youtube…)", starts_label: "Début", ends_label: "Fin",
      moments_legend: "Moments", budget_legend: "Activations par catégorie et par moment (vide : la règle par défaut)",
      make_plan: "Faire le plan", saved_label: "ou ouvrir un plan", saved_none: "—",
      plan_title: "Plan", filters_legend: "Filtrer l'affichage", f_category: "Catégorie", f_network: "Réseau",
      f_language: "Langue", f_audience: "Audience minimale", all: "Tous",
      create_activations: "Créer les activations", export_csv: "Exporter en CSV",
      kpi_title: "Indicateurs", voices_label: "Voix influentes", voices_activated: "Les personnes activées",
      refresh: "Actualiser",
      cat_statutory: "Statutaires", cat_partner: "Partenaires", cat_affinity: "Affinitaires",
      cat_customer: "Clients influents",
      type_event: "Événement", type_interview: "Entretien individuel", type_visit: "Visite en petit groupe",
      type_product_test: "Test produit", type_press: "Presse / RP", type_sponsored_post: "Publication sponsorisée",
      shortlist: "Présélection", alternates: "Remplaçants", rank: "Rang", name: "Nom", networks: "Réseaux",
      audience: "Audience", language: "Langue", score: "Score", suggested: "Activation suggérée",
      fatigue: "Sollicitation", activation: "Activation", actions: "Actions",
      to_alternates: "Vers les remplaçants", to_shortlist: "Vers la présélection", drop: "Retirer",
      add_title: "Ajouter quelqu'un ({category})", add_search: "Chercher", add_label: "Nom, identifiant ou compte",
      add_to_shortlist: "Ajouter à la présélection", add_to_alternates: "Ajouter aux remplaçants",
      add_none: "Personne de cette catégorie ne correspond.",
      budget_of: "{n} sur {budget}", missing: "{n} place(s) sans candidat.",
      skipped: "Écartés ({n})", no_one: "Personne.",
      content_title: "Contenus qui servent déjà ce moment", gaps_title: "Manques : à commander",
      no_gap: "Aucun manque pour les formats que ce moment valorise.",
      past_title: "Activations passées à ce moment", no_past: "Aucune activation passée à ce moment.",
      type: "Type", count: "Activations", sent: "Envoyées", response_rate: "Taux de réponse",
      activation_rate: "Taux d'activation", by: "par {who}",
      summary: "{id} · {products} · créé le {date} · {shortlisted} présélectionnés · {activations} activations",
      planned: "Plan prêt : {n} personnes présélectionnées sur {moments} moment(s).",
      moved_short: "{name} passe dans la présélection.", moved_alt: "{name} passe chez les remplaçants.",
      swapped: "{name} passe dans la présélection ; {other} passe chez les remplaçants (budget {budget}).",
      dropped: "{name} est retiré du plan.", added: "{name} est ajouté au plan.",
      created: "{created} activation(s) créée(s), {existing} existaient déjà, {refused} refusée(s).",
      exported: "CSV téléchargé : {file}.", working: "Calcul du plan…",
      invalid: "La demande est refusée : voir les champs signalés.",
      edited: "modifié", status_proposed: "proposée", status_sent: "envoyée", status_accepted: "acceptée",
      status_declined: "déclinée", status_published: "publiée", status_cancelled: "annulée",
      status_deleted: "supprimée",
      chart_rates_moment: "Taux de réponse et d'activation par moment",
      chart_rates_category: "Taux de réponse et d'activation par catégorie",
      chart_formats: "Publications par format", chart_sov: "Part de voix par thème et par trimestre",
      chart_tonality: "Tonalité par trimestre", chart_ctr: "Taux de clic par moment",
      data_table: "Données du graphique", no_data: "Pas encore de données.",
      publications: "Publications", mean_sentiment: "Sentiment moyen", positive_share: "Part positive",
      negative_share: "Part négative", ctr: "Taux de clic", impressions: "Impressions", clicks: "Clics",
      share: "Part de voix", quarter: "Trimestre", theme: "Thème", moment: "Moment", category: "Catégorie",
      format: "Format", value: "Valeur", kpi_voices: "{n} voix ({rule})", kpi_loading: "Indicateurs à jour.",
    },
    en: {
      title: "Relais — campaign planner", heading: "Campaign planner", skip: "Skip to content",
      sections: "Sections", nav_brief: "Brief", nav_plan: "Plan", nav_kpis: "KPIs",
      noscript: "This page needs JavaScript: it calls the Relais API.",
      key_title: "API key", key_label: "Planner or admin key", key_use: "Use", key_forget: "Forget",
      key_help: "Kept in this tab only (sessionStorage), sent with every API call.",
      key_needed: "A planner or admin key is needed.",
      brief_title: "Brief", brief_label: "What the campaign says", products_label: "Products (comma-separated)",
      campaign_label: "Campaign", campaign_none: "None", languages_label: "Languages (fr, en…)",
      networks_label: "Networks (instagram, youtube…)", starts_label: "Starts", ends_label: "Ends",
      moments_legend: "Moments", budget_legend: "Activations per category and moment (empty: the default rule)",
      make_plan: "Make the plan", saved_label: "or open a plan", saved_none: "—",
      plan_title: "Plan", filters_legend: "Filter the view", f_category: "Category", f_network: "Network",
      f_language: "Language", f_audience: "Minimum audience", all: "All",
      create_activations: "Create the activations", export_csv: "Export as CSV",
      kpi_title: "KPIs", voices_label: "Influential voices", voices_activated: "The people activated",
      refresh: "Refresh",
      cat_statutory: "Statutory", cat_partner: "Partners", cat_affinity: "Affinity",
      cat_customer: "Influential customers",
      type_event: "Event", type_interview: "One-to-one interview", type_visit: "Small-group visit",
      type_product_test: "Product test", type_press: "Press / PR", type_sponsored_post: "Sponsored post",
      shortlist: "Shortlist", alternates: "Alternates", rank: "Rank", name: "Name", networks: "Networks",
      audience: "Audience", language: "Language", score: "Score", suggested: "Suggested activation",
      fatigue: "Solicitation", activation: "Activation", actions: "Actions",
      to_alternates: "To alternates", to_shortlist: "To shortlist", drop: "Drop",
      add_title: "Add someone ({category})", add_search: "Search", add_label: "Name, id or handle",
      add_to_shortlist: "Add to shortlist", add_to_alternates: "Add to alternates",
      add_none: "No one of this category matches.",
      budget_of: "{n} of {budget}", missing: "{n} place(s) with no candidate.",
      skipped: "Skipped ({n})", no_one: "No one.",
      content_title: "Content that already serves this moment", gaps_title: "Gaps: to commission",
      no_gap: "No gap in the formats this moment values.",
      past_title: "Past activations at this moment", no_past: "No past activation at this moment.",
      type: "Type", count: "Activations", sent: "Sent", response_rate: "Response rate",
      activation_rate: "Activation rate", by: "by {who}",
      summary: "{id} · {products} · made {date} · {shortlisted} shortlisted · {activations} activations",
      planned: "Plan ready: {n} people shortlisted over {moments} moment(s).",
      moved_short: "{name} moves to the shortlist.", moved_alt: "{name} moves to the alternates.",
      swapped: "{name} moves to the shortlist; {other} moves to the alternates (budget {budget}).",
      dropped: "{name} is dropped from the plan.", added: "{name} is added to the plan.",
      created: "{created} activation(s) created, {existing} existed already, {refused} refused.",
      exported: "CSV downloaded: {file}.", working: "Making the plan…",
      invalid: "The request is refused: see the fields marked.",
      edited: "edited", status_proposed: "proposed", status_sent: "sent", status_accepted: "accepted",
      status_declined: "declined", status_published: "published", status_cancelled: "cancelled",
      status_deleted: "deleted",
      chart_rates_moment: "Response and activation rates by moment",
      chart_rates_category: "Response and activation rates by category",
      chart_formats: "Publications by format", chart_sov: "Share of voice by theme and quarter",
      chart_tonality: "Tonality by quarter", chart_ctr: "Click-through rate by moment",
      data_table: "The chart's data", no_data: "No data yet.",
      publications: "Publications", mean_sentiment: "Mean sentiment", positive_share: "Positive share",
      negative_share: "Negative share", ctr: "Click-through rate", impressions: "Impressions", clicks: "Clicks",
      share: "Share of voice", quarter: "Quarter", theme: "Theme", moment: "Moment", category: "Category",
      format: "Format", value: "Value", kpi_voices: "{n} voices ({rule})", kpi_loading: "KPIs up to date.",
    },
  };

  const state = {
    lang: "fr", dev: false, key: "", moments: [], plan: null, kpis: null, charts: [], focus: null,
  };

  // -- little helpers ------------------------------------------------------------------------------------------

  function t(name, values) {
    const text = (WORDS[state.lang] && WORDS[state.lang][name]) || WORDS.en[name] || name;
    return text.replace(/\{(\w+)\}/g, (_, k) => (values && k in values ? String(values[k]) : ""));
  }

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  }

  const $ = (id) => document.getElementById(id);
  const number = (n) => (n === null || n === undefined ? "—" : new Intl.NumberFormat(state.lang).format(n));
  const percent = (n) =>
    n === null || n === undefined ? "—" : new Intl.NumberFormat(state.lang, {style: "percent", maximumFractionDigits: 1}).format(n);
  const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
  const category = (name) => t(`cat_${name}`);
  const kind = (name) => t(`type_${name}`);
  const momentLabel = (name) => {
    const found = state.moments.find((m) => m.name === name);
    return found ? found.label[state.lang] || found.label.en || name : name;
  };

  function say(message) {
    $("alert").hidden = true;
    $("status").textContent = message;
  }

  function fail(error) {
    const box = $("alert");
    box.textContent = error.message || String(error);
    box.hidden = false;
    if (error.status === 401 || error.status === 403) $("key-section").hidden = false;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.fields = (body && body.fields) || {};
    }
  }

  async function api(method, path, body) {
    const headers = {Accept: "application/json"};
    if (state.key) headers.Authorization = `Bearer ${state.key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    const json = (response.headers.get("Content-Type") || "").includes("json");
    const data = json ? await response.json() : await response.text();
    if (!response.ok) throw new ApiError(response.status, json && data.error ? data.error : {message: String(data)});
    return data;
  }

  // -- language ------------------------------------------------------------------------------------------------

  function translate() {
    document.documentElement.lang = state.lang;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-label]")) {
      node.setAttribute("aria-label", t(node.dataset.i18nLabel));
    }
    for (const button of document.querySelectorAll("[data-lang]")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
    }
  }

  function setLanguage(lang) {
    state.lang = lang;
    localStorage.setItem("relais.lang", lang);
    const url = new URL(location.href);
    url.searchParams.set("lang", lang);
    history.replaceState(null, "", url);
    translate();
    fillBriefChoices();
    if (state.plan) renderPlan();
    if (state.kpis) renderCharts();
  }

  // -- the brief -----------------------------------------------------------------------------------------------

  function fillBriefChoices() {
    const moments = $("moments");
    const checked = new Set([...moments.querySelectorAll("input:checked")].map((i) => i.value));
    const fresh = !moments.querySelector("input");
    for (const node of [...moments.querySelectorAll("span.choice")]) node.remove();
    for (const m of state.moments) {
      const id = `moment-${m.name}`;
      moments.append(
        el("span", {class: "choice"},
          el("input", {type: "checkbox", id, name: "moments", value: m.name, checked: fresh || checked.has(m.name)}),
          el("label", {for: id, text: momentLabel(m.name)})),
      );
    }
    const budget = $("budget");
    const given = Object.fromEntries([...budget.querySelectorAll("input")].map((i) => [i.name, i.value]));
    for (const node of [...budget.querySelectorAll("span.choice")]) node.remove();
    for (const c of CATEGORIES) {
      const id = `budget-${c}`;
      budget.append(
        el("span", {class: "choice"},
          el("label", {for: id, text: category(c)}),
          el("input", {type: "number", id, name: c, min: "0", max: "20", step: "1", value: given[c] || ""})),
      );
    }
    setOptions($("f-category"), CATEGORIES.map((c) => [c, category(c)]));
    setOptions($("voices"), CATEGORIES.map((c) => [c, category(c)]));
  }

  // A select's options after its first ("all", "none"…): these [value, text] pairs, the one chosen kept if still there.
  function setOptions(select, pairs) {
    const chosen = select.value;
    for (const option of [...select.options].slice(1)) option.remove();
    for (const [value, text] of pairs) select.append(el("option", {value, text, selected: value === chosen}));
  }

  function briefBody() {
    const body = {
      brief: $("brief").value.trim(),
      products: list($("products").value),
      moments: [...document.querySelectorAll("#moments input:checked")].map((i) => i.value),
      budget: {},
      languages: list($("languages").value),
      networks: list($("networks").value),
    };
    for (const input of document.querySelectorAll("#budget input")) {
      if (input.value !== "") body.budget[input.name] = Number(input.value);
    }
    if ($("campaign").value) body.campaign = $("campaign").value;
    for (const name of ["starts_on", "ends_on"]) if ($(name).value) body[name] = $(name).value;
    return body;
  }

  function clearFieldErrors() {
    for (const node of document.querySelectorAll("#brief-form .error")) {
      node.hidden = true;
      node.textContent = "";
    }
    for (const node of document.querySelectorAll("#brief-form [aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  function showFieldErrors(fields) {
    let first = null;
    for (const [name, messages] of Object.entries(fields)) {
      const box = $(`${name.split(".")[0]}-error`);
      const input = $(name.split(".")[0]);
      if (!box) continue;
      box.textContent = [].concat(messages).flatMap((m) => (typeof m === "string" ? [m] : Object.values(m).flat())).join(" ");
      box.hidden = false;
      if (input) input.setAttribute("aria-invalid", "true");
      first = first || input;
    }
    if (first) first.focus();
  }

  async function makePlan(event) {
    event.preventDefault();
    clearFieldErrors();
    const button = $("make-plan");
    button.disabled = true;
    say(t("working"));
    try {
      state.plan = await api("POST", "/v1/plans", briefBody());
      renderPlan();
      await listPlans();
      const shortlisted = rowsOf(state.plan, ["shortlist"]).length;
      say(t("planned", {n: shortlisted, moments: state.plan.moments.length}));
      $("plan-title").focus();
    } catch (error) {
      if (error.status === 400) {
        showFieldErrors(error.fields);
        fail({message: `${t("invalid")} ${error.message}`});
      } else fail(error);
    } finally {
      button.disabled = false;
    }
  }

  function fillBriefFrom(request) {
    $("brief").value = request.brief || "";
    $("products").value = (request.products || []).join(", ");
    $("languages").value = (request.languages || []).join(", ");
    $("networks").value = (request.networks || []).join(", ");
    $("starts_on").value = request.starts_on || "";
    $("ends_on").value = request.ends_on || "";
    $("campaign").value = request.campaign || "";
    for (const input of document.querySelectorAll("#moments input")) {
      input.checked = (request.moments || []).includes(input.value);
    }
    for (const input of document.querySelectorAll("#budget input")) input.value = (request.budget || {})[input.name] ?? "";
  }

  async function listPlans() {
    const select = $("saved-plans");
    const plans = (await api("GET", "/v1/plans")).plans;
    setOptions(select, plans.map((p) => [p.id, `${p.id} — ${p.brief.slice(0, 60)}`]));
    select.value = state.plan ? state.plan.id : "";
  }

  async function openPlan() {
    const id = $("saved-plans").value;
    if (!id) return;
    try {
      state.plan = await api("GET", `/v1/plans/${encodeURIComponent(id)}`);
      fillBriefFrom(state.plan.request);
      renderPlan();
      $("plan-title").focus();
    } catch (error) {
      fail(error);
    }
  }

  // -- the plan ------------------------------------------------------------------------------------------------

  function rowsOf(plan, roles) {
    const out = [];
    for (const m of plan.moments) {
      for (const b of m.categories) {
        for (const role of roles) for (const r of b[role]) out.push({moment: m.moment, block: b, row: r});
      }
    }
    return out;
  }

  function renderPlan() {
    const plan = state.plan;
    $("plan-section").hidden = false;
    $("plan-title").setAttribute("tabindex", "-1");
    $("plan-summary").textContent = t("summary", {
      id: plan.id, products: plan.request.products.join(", "),
      date: new Date(plan.created_at).toLocaleString(state.lang),
      shortlisted: rowsOf(plan, ["shortlist"]).length, activations: plan.activations.length,
    });
    fillViewFilters(plan);
    const root = $("plan");
    root.replaceChildren(...plan.moments.map(renderMoment));
    applyViewFilters();
    if (state.focus) {
      const target = document.querySelector(`[data-focus="${CSS.escape(state.focus)}"]`);
      if (target) target.focus();
      state.focus = null;
    }
  }

  function fillViewFilters(plan) {
    const rows = rowsOf(plan, ["shortlist", "alternates"]).map((x) => x.row);
    for (const [id, values] of [
      ["f-network", [...new Set(rows.flatMap((r) => r.networks))].sort()],
      ["f-language", [...new Set(rows.map((r) => r.language).filter(Boolean))].sort()],
    ]) {
      setOptions($(id), values.map((v) => [v, v]));
    }
  }

  function applyViewFilters() {
    const wanted = {
      category: $("f-category").value, network: $("f-network").value,
      language: $("f-language").value, audience: Number($("f-audience").value || 0),
    };
    for (const block of document.querySelectorAll("#plan .block")) {
      block.hidden = Boolean(wanted.category) && block.dataset.category !== wanted.category;
    }
    for (const tr of document.querySelectorAll("#plan tr.person")) {
      const networks = tr.dataset.networks.split(" ");
      tr.hidden = (wanted.network && !networks.includes(wanted.network))
        || (wanted.language && tr.dataset.language !== wanted.language)
        || Number(tr.dataset.followers) < wanted.audience;
    }
  }

  function renderMoment(m) {
    const heading = `moment-title-${m.moment}`;
    return el("section", {class: "moment", "aria-labelledby": heading, dataset: {moment: m.moment}},
      el("h3", {id: heading, text: m.label[state.lang] || m.label.en || m.moment}),
      m.categories.map((b) => renderBlock(m, b)),
      renderContent(m), renderGaps(m), renderPast(m));
  }

  function renderBlock(m, b) {
    const title = `${category(b.category)} — ${t("budget_of", {n: b.shortlist.length, budget: b.budget})}`;
    return el("div", {class: "block", dataset: {category: b.category}},
      el("h4", {text: title, id: `block-${m.moment}-${b.category}`, tabindex: "-1",
        dataset: {focus: `block:${m.moment}:${b.category}`}}),
      b.missing > 0 ? el("p", {class: "help", text: t("missing", {n: b.missing})}) : null,
      renderTable(m, b, "shortlist"),
      renderTable(m, b, "alternates"),
      el("details", {},
        el("summary", {text: t("skipped", {n: b.skipped.length})}),
        b.skipped.length
          ? el("ul", {}, b.skipped.map((s) => el("li", {text: `${s.name} (${s.score.toFixed(2)}) — ${s.reason}`})))
          : el("p", {class: "empty", text: t("no_one")})),
      renderAdd(m, b));
  }

  function renderTable(m, b, role) {
    const rows = b[role];
    const headers = ["rank", "name", "networks", "audience", "language", "score", "suggested", "fatigue", "activation", "actions"];
    return el("table", {class: role, dataset: {moment: m.moment, category: b.category, role}},
      el("caption", {text: `${t(role)} · ${category(b.category)} · ${momentLabel(m.moment)}`}),
      el("thead", {}, el("tr", {}, headers.map((h) =>
        el("th", {scope: "col", class: ["rank", "audience", "score"].includes(h) ? "number" : null, text: t(h)})))),
      el("tbody", {}, rows.length
        ? rows.map((r) => renderRow(m, b, role, r))
        : el("tr", {}, el("td", {colspan: String(headers.length), class: "empty", text: t("no_one")}))));
  }

  function renderRow(m, b, role, r) {
    const other = role === "shortlist" ? "alternates" : "shortlist";
    const move = el("button", {
      type: "button", text: t(role === "shortlist" ? "to_alternates" : "to_shortlist"),
      "aria-label": `${t(role === "shortlist" ? "to_alternates" : "to_shortlist")} : ${r.name}`,
      dataset: {focus: `move:${m.moment}:${r.id}`, action: "move"},
      onclick: () => moveRow(m, b, r, other),
    });
    const drop = el("button", {
      type: "button", class: "danger", text: t("drop"), "aria-label": `${t("drop")} : ${r.name}`,
      dataset: {action: "drop"}, onclick: () => dropRow(m, b, r),
    });
    const status = r.activation ? t(`status_${r.activation.status}`) : "—";
    return el("tr", {
      class: `person ${role === "shortlist" ? "shortlisted" : "alternate"}`,
      dataset: {id: r.id, networks: r.networks.join(" "), language: r.language || "", followers: String(r.followers)},
    },
    el("td", {class: "number", text: r.rank}),
    el("th", {scope: "row"}, r.name,
      r.edited ? el("span", {class: "tag edited", title: r.edited, text: t("edited")}) : null,
      el("span", {class: "why", text: r.diversity || ""})),
    el("td", {}, r.networks.map((n) => el("span", {class: "tag", text: n}))),
    el("td", {class: "number", text: number(r.followers)}),
    el("td", {text: r.language || "—"}),
    el("td", {class: "number", title: r.explanation, text: r.score.toFixed(2)}),
    el("td", {}, kind(r.suggested.type), el("span", {class: "why", text: r.suggested.reason}),
      r.suggested.past.sent
        ? el("span", {class: "why", text: `${t("response_rate")} ${percent(r.suggested.past.response_rate)} · ${t("activation_rate")} ${percent(r.suggested.past.activation_rate)}`})
        : null),
    el("td", {}, r.fatigue.value.toFixed(2), el("span", {class: "why", text: r.fatigue.reason})),
    el("td", {}, r.activation ? el("span", {class: "tag status", text: status}) : status),
    el("td", {}, el("div", {class: "row-actions"}, move, drop)));
  }

  function renderAdd(m, b) {
    const id = `add-${m.moment}-${b.category}`;
    const results = el("ul", {"aria-live": "polite", id: `${id}-results`});
    const input = el("input", {id, type: "search", minlength: "2", maxlength: "100", autocomplete: "off"});
    const form = el("form", {class: "add row-form", role: "search",
      onsubmit: async (event) => {
        event.preventDefault();
        if (input.value.trim().length < 2) return;
        try {
          const q = new URLSearchParams({q: input.value.trim(), category: b.category, limit: "8"});
          const found = (await api("GET", `/v1/influencers?${q}`)).influencers;
          const inPlan = new Set(rowsOf(state.plan, ["shortlist", "alternates"]).map((x) => x.row.id));
          const addable = found.filter((f) => !inPlan.has(f.id));
          results.replaceChildren(...(addable.length ? addable.map((f) => el("li", {},
            el("span", {text: `${f.name} · ${f.networks.join(", ")} · ${number(f.followers)}`}),
            el("button", {type: "button", class: "secondary", text: t("add_to_shortlist"),
              "aria-label": `${t("add_to_shortlist")} : ${f.name}`, onclick: () => addRow(m, b, f, "shortlist")}),
            el("button", {type: "button", class: "secondary", text: t("add_to_alternates"),
              "aria-label": `${t("add_to_alternates")} : ${f.name}`, onclick: () => addRow(m, b, f, "alternates")})))
            : [el("li", {class: "empty", text: t("add_none")})]));
        } catch (error) {
          fail(error);
        }
      }},
    el("label", {for: id, text: `${t("add_title", {category: category(b.category)})} — ${t("add_label")}`}),
    input,
    el("button", {type: "submit", class: "secondary", text: t("add_search")}));
    return el("div", {}, form, results);
  }

  function renderContent(m) {
    return el("div", {},
      el("h4", {text: t("content_title")}),
      m.content.length
        ? el("ol", {}, m.content.map((c) => el("li", {},
          el("a", {href: c.url, rel: "noopener noreferrer", target: "_blank", text: c.title}),
          ` · ${c.format} · ${c.language}`, c.influencer ? ` · ${t("by", {who: c.influencer.name})}` : "")))
        : el("p", {class: "empty", text: t("no_one")}));
  }

  function renderGaps(m) {
    return el("div", {},
      el("h4", {text: t("gaps_title")}),
      m.gaps.length
        ? el("ul", {class: "gaps"}, m.gaps.map((g) => el("li", {text: g.message})))
        : el("p", {class: "empty", text: t("no_gap")}));
  }

  function renderPast(m) {
    return el("div", {},
      el("h4", {text: t("past_title")}),
      m.past_activations.length
        ? el("table", {},
          el("thead", {}, el("tr", {}, ["type", "count", "sent", "response_rate", "activation_rate"].map((h) =>
            el("th", {scope: "col", text: t(h)})))),
          el("tbody", {}, m.past_activations.map((p) => el("tr", {},
            el("th", {scope: "row", text: kind(p.type)}), el("td", {class: "number", text: p.activations}),
            el("td", {class: "number", text: p.sent}), el("td", {class: "number", text: percent(p.response_rate)}),
            el("td", {class: "number", text: percent(p.activation_rate)})))))
        : el("p", {class: "empty", text: t("no_past")}));
  }

  // -- editing -------------------------------------------------------------------------------------------------

  async function edit(edits, message, focus) {
    try {
      state.plan = await api("PATCH", `/v1/plans/${encodeURIComponent(state.plan.id)}`, {edits});
      state.focus = focus;
      renderPlan();
      say(message);
    } catch (error) {
      fail(error);
    }
  }

  // Who leaves a full shortlist for someone to join it: its last, to the head of the alternates (a swap, in the
  // same call as the move, since no shortlist may go over its budget); null when there is room.
  function makingRoom(b, to) {
    return to === "shortlist" && b.shortlist.length >= b.budget && b.shortlist.length
      ? b.shortlist[b.shortlist.length - 1] : null;
  }

  function moveRow(m, b, r, to) {
    const last = makingRoom(b, to);
    const moves = [{moment: m.moment, influencer: r.id, to}];
    if (last) {
      return edit([{moment: m.moment, influencer: last.id, to: "alternates", position: 1}, ...moves],
        t("swapped", {name: r.name, other: last.name, budget: b.budget}), `move:${m.moment}:${r.id}`);
    }
    return edit(moves, t(to === "shortlist" ? "moved_short" : "moved_alt", {name: r.name}), `move:${m.moment}:${r.id}`);
  }

  function dropRow(m, b, r) {
    return edit([{moment: m.moment, influencer: r.id, to: "dropped"}], t("dropped", {name: r.name}),
      `block:${m.moment}:${b.category}`);
  }

  function addRow(m, b, person, to) {
    const last = makingRoom(b, to);
    const edits = last ? [{moment: m.moment, influencer: last.id, to: "alternates", position: 1}] : [];
    edits.push({moment: m.moment, influencer: person.id, to});
    return edit(edits, t("added", {name: person.name}), `move:${m.moment}:${person.id}`);
  }

  async function createActivations() {
    const button = $("create-activations");
    button.disabled = true;
    try {
      const id = encodeURIComponent(state.plan.id);
      const answer = await api("POST", `/v1/plans/${id}/activations`, {});
      state.plan = await api("GET", `/v1/plans/${id}`);
      renderPlan();
      say(t("created", {created: answer.created.length, existing: answer.existing.length, refused: answer.not_created.length}));
      await loadKpis();
    } catch (error) {
      fail(error);
    } finally {
      button.disabled = false;
    }
  }

  async function exportCsv() {
    const id = state.plan.id;
    const headers = state.key ? {Authorization: `Bearer ${state.key}`} : {};
    try {
      const response = await fetch(`/v1/plans/${encodeURIComponent(id)}.csv`, {headers});
      if (!response.ok) throw new ApiError(response.status, (await response.json()).error);
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", {href: url, download: `${id}.csv`, hidden: true});
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      say(t("exported", {file: `${id}.csv`}));
    } catch (error) {
      fail(error);
    }
  }

  // -- KPIs ----------------------------------------------------------------------------------------------------

  async function loadKpis() {
    const voices = $("voices").value || "activated";
    try {
      const [byMoment, byCategory, byQuarter] = await Promise.all([
        api("GET", "/v1/kpis?group_by=moment"),
        api("GET", "/v1/kpis?group_by=category"),
        api("GET", `/v1/kpis?group_by=quarter&voices=${encodeURIComponent(voices)}`),
      ]);
      state.kpis = {byMoment, byCategory, byQuarter};
      renderCharts();
    } catch (error) {
      fail(error);
    }
  }

  const value = (figure) => (figure ? figure.value : null);

  function chartSpecs() {
    const {byMoment, byCategory, byQuarter} = state.kpis;
    const rates = (groups, label) => ({
      labels: groups.map((g) => label(g.group)),
      datasets: [
        {label: t("response_rate"), data: groups.map((g) => value(g.response_rate))},
        {label: t("activation_rate"), data: groups.map((g) => value(g.activation_rate))},
      ],
      percent: true,
    });
    const formats = {};
    for (const g of byMoment.activations.groups) {
      for (const [format, share] of Object.entries(value(g.formats) || {})) {
        formats[format] = (formats[format] || 0) + share * (value(g.publications) || 0);
      }
    }
    // Each theme's share is the voices' part of that theme's publications: shares of different themes do not add
    // up, so they are lines (the five themes with the most publications; the data table lists every theme).
    const quarters = [...new Set(byQuarter.share_of_voice.groups.map((g) => g.group.quarter))].sort();
    const volume = {};
    for (const g of byQuarter.share_of_voice.groups) {
      volume[g.group.theme] = (volume[g.group.theme] || 0) + (value(g.publications) || 0);
    }
    const themes = Object.keys(volume).sort((a, b) => volume[b] - volume[a]);
    const share = (q, theme) => {
      const g = byQuarter.share_of_voice.groups.find((x) => x.group.quarter === q && x.group.theme === theme);
      return g ? value(g.share) : null;
    };
    const tonality = [...byQuarter.tonality.groups].sort((a, b) => a.group.quarter.localeCompare(b.group.quarter));
    const customers = byMoment.customers.groups;
    return [
      {id: "rates-moment", title: t("chart_rates_moment"), type: "bar", ...rates(byMoment.activations.groups, (g) => momentLabel(g.moment))},
      {id: "rates-category", title: t("chart_rates_category"), type: "bar", ...rates(byCategory.activations.groups, (g) => category(g.category))},
      {id: "formats", title: t("chart_formats"), type: "bar", labels: Object.keys(formats),
        datasets: [{label: t("publications"), data: Object.values(formats).map((n) => Math.round(n))}]},
      {id: "share-of-voice", title: `${t("chart_sov")} — ${t("kpi_voices", {n: byQuarter.share_of_voice.voices.count, rule: $("voices").selectedOptions[0].textContent})}`,
        type: "line", percent: true, labels: quarters, shown: 5,
        datasets: themes.map((theme) => ({label: theme, data: quarters.map((q) => share(q, theme))}))},
      {id: "tonality", title: t("chart_tonality"), type: "line", labels: tonality.map((g) => g.group.quarter),
        datasets: ["mean_sentiment", "positive_share", "negative_share"].map((name) =>
          ({label: t(name), data: tonality.map((g) => value(g[name]))}))},
      {id: "ctr-moment", title: t("chart_ctr"), type: "bar", percent: true, labels: customers.map((g) => momentLabel(g.group.moment)),
        datasets: [{label: t("ctr"), data: customers.map((g) => value(g.ctr))}]},
    ];
  }

  function renderCharts() {
    for (const chart of state.charts) chart.destroy();
    state.charts = [];
    const root = $("charts");
    root.replaceChildren();
    for (const spec of chartSpecs()) {
      const hasData = spec.datasets.some((d) => d.data.some((v) => v !== null && v !== undefined));
      const figure = el("figure", {class: "chart", id: `chart-${spec.id}`, "aria-labelledby": `chart-${spec.id}-title`},
        el("h3", {id: `chart-${spec.id}-title`, text: spec.title}));
      root.append(figure);
      if (!hasData) {
        figure.append(el("p", {class: "empty", text: t("no_data")}));
        continue;
      }
      const canvas = el("canvas", {role: "img", "aria-label": `${spec.title}. ${t("data_table")} ↓`});
      figure.append(el("div", {class: "canvas"}, canvas), dataTable(spec));
      state.charts.push(drawChart(canvas, spec));
    }
  }

  function drawChart(canvas, spec) {
    const format = (v) => (spec.percent ? percent(v) : number(v));
    return new window.Chart(canvas, {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: spec.datasets.slice(0, spec.shown || spec.datasets.length).map((d, i) => ({
          ...d, backgroundColor: COLOURS[i % COLOURS.length], borderColor: COLOURS[i % COLOURS.length], spanGaps: true,
        })),
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, locale: state.lang,
        scales: {
          y: {beginAtZero: true, ticks: {callback: format, precision: spec.percent ? undefined : 0}},
        },
        plugins: {tooltip: {callbacks: {label: (c) => `${c.dataset.label}: ${format(c.parsed.y)}`}}},
      },
    });
  }

  function dataTable(spec) {
    const format = (v) => (spec.percent ? percent(v) : number(v));
    return el("details", {},
      el("summary", {text: t("data_table")}),
      el("table", {},
        el("thead", {}, el("tr", {}, el("th", {scope: "col", text: ""}),
          spec.datasets.map((d) => el("th", {scope: "col", text: d.label})))),
        el("tbody", {}, spec.labels.map((label, i) => el("tr", {},
          el("th", {scope: "row", text: label}),
          spec.datasets.map((d) => el("td", {class: "number", text: format(d.data[i])})))))));
  }

  // -- start ---------------------------------------------------------------------------------------------------

  async function load() {
    try {
      await listPlans(); // first: a planner's route, so that a key of another role is told so at once
      $("key-section").hidden = true;
      $("alert").hidden = true;
      state.moments = (await api("GET", "/v1/moments")).moments;
      fillBriefChoices();
      const campaigns = (await api("GET", "/v1/campaigns")).campaigns;
      setOptions($("campaign"), campaigns.map((c) => [c.id, c.name || c.id]));
      await loadKpis();
    } catch (error) {
      fail(error);
    }
  }

  function start() {
    state.dev = document.body.dataset.dev === "true";
    const asked = new URLSearchParams(location.search).get("lang");
    state.lang = WORDS[asked] ? asked : WORDS[localStorage.getItem("relais.lang")] ? localStorage.getItem("relais.lang")
      : document.documentElement.lang in WORDS ? document.documentElement.lang : "fr";
    state.key = sessionStorage.getItem("relais.key") || "";
    translate();
    for (const button of document.querySelectorAll("[data-lang]")) {
      button.addEventListener("click", () => setLanguage(button.dataset.lang));
    }
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      state.key = $("key").value.trim();
      sessionStorage.setItem("relais.key", state.key);
      $("key").value = "";
      load();
    });
    $("key-forget").addEventListener("click", () => {
      state.key = "";
      sessionStorage.removeItem("relais.key");
      $("key-section").hidden = false;
    });
    $("brief-form").addEventListener("submit", makePlan);
    $("saved-plans").addEventListener("change", openPlan);
    $("create-activations").addEventListener("click", createActivations);
    $("export-csv").addEventListener("click", exportCsv);
    for (const id of ["f-category", "f-network", "f-language", "f-audience"]) {
      for (const type of ["input", "change"]) $(id).addEventListener(type, applyViewFilters);
    }
    $("kpi-form").addEventListener("submit", (event) => {
      event.preventDefault();
      loadKpis().then(() => say(t("kpi_loading")));
    });
    if (!state.dev && !state.key) {
      $("key-section").hidden = false;
      fail({message: t("key_needed")});
      return;
    }
    load();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
