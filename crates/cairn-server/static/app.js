// cairn's one script: progressive enhancement only (every page works without it).
// The segment rule box: checks the rule as you type and previews its members, by calling
// /segments/check (JSON). Without JavaScript the form's submit button does the same.
"use strict";
(function () {
  const box = document.getElementById("rule");
  if (!box) return;
  const check = document.getElementById("rule-check");
  const preview = document.getElementById("rule-preview");
  const subject = document.getElementById("rule-of");
  let timer = null;
  let asked = 0;
  function text(el, value) { el.textContent = value; }
  function show(result) {
    check.replaceChildren();
    preview.replaceChildren();
    if (!result.ok) {
      const list = document.createElement("ul");
      for (const d of result.diagnostics) {
        const li = document.createElement("li");
        li.className = "diag";
        text(li, d);
        list.appendChild(li);
      }
      check.appendChild(list);
      return;
    }
    const good = document.createElement("p");
    good.className = "good";
    text(good, "✓ The rule checks.");
    check.appendChild(good);
    const count = document.createElement("p");
    text(count, result.count + " of " + result.of_total + " " + result.of + "s match now.");
    preview.appendChild(count);
    if (result.sample.length) {
      const ul = document.createElement("ul");
      for (const s of result.sample) {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = s.href;
        text(a, s.label);
        li.appendChild(a);
        ul.appendChild(li);
      }
      preview.appendChild(ul);
    }
    const yaml = document.getElementById("rule-yaml");
    if (yaml) text(yaml, result.yaml);
  }
  function run() {
    const n = ++asked;
    const q = new URLSearchParams({ rule: box.value, of: subject ? subject.value : "account" });
    fetch("/segments/check?" + q.toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (result) { if (n === asked) show(result); })
      .catch(function () { text(check, "Could not check the rule just now."); });
  }
  box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(run, 250); });
  if (subject) subject.addEventListener("change", run);
})();

// Figures computed for the first time: no page reloads itself (a timed reload takes the
// page from under the reader). The page is asked for again every 5 seconds, and when its
// figures are there the status line says so, with a link that shows them.
(function () {
  const status = document.querySelector("#freshness[data-computing]");
  if (!status) return;
  let tries = 0;
  function ready() {
    status.replaceChildren();
    status.className = "good";
    status.appendChild(document.createTextNode("The figures are ready: "));
    const a = document.createElement("a");
    a.href = window.location.href;
    a.textContent = "show them";
    status.appendChild(a);
    status.appendChild(document.createTextNode("."));
  }
  function ask() {
    if (++tries > 120) return;
    fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        const page = new DOMParser().parseFromString(html, "text/html");
        if (page.querySelector("#freshness[data-computing]")) setTimeout(ask, 5000);
        else ready();
      })
      .catch(function () { setTimeout(ask, 5000); });
  }
  setTimeout(ask, 5000);
})();
