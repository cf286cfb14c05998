// claimradar review UI: the decision form's small helpers (no framework, no network).
(function () {
  "use strict";
  function num(text) {
    var t = String(text || "").replace(/\s/g, "");
    if (!t) return null;
    if (/^\d{1,3}(\.\d{3})+(,\d+)?$/.test(t)) t = t.replace(/\./g, "").replace(",", ".");
    else if (/^\d{1,3}(,\d{3})+(\.\d+)?$/.test(t)) t = t.replace(/,/g, "");
    else t = t.replace(",", ".");
    var v = parseFloat(t);
    return isNaN(v) ? null : v;
  }
  function fmt(v) {
    var vi = document.documentElement.lang === "vi";
    var s = Math.round(v).toString().replace(/\B(?=(\d{3})+(?!\d))/g, vi ? "." : ",");
    return s + (vi ? " đ" : " VND");
  }
  document.addEventListener("DOMContentLoaded", function () {
    // Filters: leave empty and default fields out of the URL, so links stay short and clear.
    var filters = document.getElementById("filters");
    if (filters) filters.addEventListener("submit", function () {
      filters.querySelectorAll("select, input").forEach(function (el) {
        if (!el.value || (el.name === "status" && el.value === "todo")) el.disabled = true;
      });
    });
    var form = document.getElementById("decision-form");
    if (!form) return;
    var part = document.getElementById("part");
    var reason = document.getElementById("reason-code");
    var total = document.getElementById("lines-total");
    function outcome() {
      var c = form.querySelector("input[name=outcome]:checked");
      return c ? c.value : "";
    }
    function sync() {
      var o = outcome();
      part.classList.toggle("hidden", o !== "reject_part");
      Array.prototype.forEach.call(reason.options, function (opt) {
        if (!opt.value) return;
        var ok = !o || (opt.getAttribute("data-outcomes") || "").split(" ").indexOf(o) >= 0;
        opt.disabled = !ok;
        opt.hidden = !ok;
        if (!ok && opt.selected) reason.value = "";
      });
    }
    function lines() {
      var sum = 0;
      document.querySelectorAll("tr[data-line]").forEach(function (tr) {
        var id = tr.getAttribute("data-line");
        var qi = document.querySelector("input[name='qty_" + id + "']");
        var pi = document.querySelector("input[name='price_" + id + "']");
        if (!qi || !pi) return;
        var q0 = parseFloat(tr.getAttribute("data-qty")), p0 = parseFloat(tr.getAttribute("data-price"));
        var billed = parseFloat(tr.getAttribute("data-amount")) || q0 * p0;
        var fund = parseFloat(tr.getAttribute("data-fund"));
        var q = qi.value ? num(qi.value) : q0, p = pi.value ? num(pi.value) : p0;
        if (q === null || p === null) return;
        var share = billed > 0 && !isNaN(fund) ? fund / billed : 1;
        sum += Math.max(0, billed - q * p) * share;
      });
      total.textContent = sum > 0 ? fmt(sum) : "—";
      if (sum > 0) {
        var lm = document.getElementById("mode-lines");
        if (lm && !lm.checked) lm.checked = true;
      }
    }
    form.addEventListener("change", sync);
    document.querySelectorAll("input.linein").forEach(function (el) {
      el.addEventListener("input", lines);
    });
    var amount = document.getElementById("amount");
    if (amount) amount.addEventListener("input", function () {
      var am = document.getElementById("mode-amount");
      if (am) am.checked = true;
    });
    sync();
    lines();
  });
})();
