// The console's few behaviours: copy, confirm, upload progress, chat niceties, charts.
// No inline scripts anywhere (the pages' CSP forbids them); everything hangs off data-*.
(function () {
  "use strict";

  function flash(message) {
    var box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.classList.toggle("shown", Boolean(message));
  }

  function copyFrom(selector) {
    var field = document.querySelector(selector);
    if (!field) return;
    var done = function () { flash("Copied to the clipboard."); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        field.select();
        flash("Select the key and copy it with Ctrl+C.");
      });
      return;
    }
    field.focus();
    field.select();
    // Plain-http LAN pages have no async clipboard: the legacy command still works there.
    if (document.execCommand && document.execCommand("copy")) done();
    else flash("Select the key and copy it with Ctrl+C.");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) copyFrom(button.getAttribute("data-copy"));
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.id === "chat-message") {
      event.preventDefault();
      event.target.form.requestSubmit();
    }
  });

  // -- htmx hooks -------------------------------------------------------------------------
  document.addEventListener("htmx:xhr:progress", function (event) {
    var bar = document.getElementById("upload-progress");
    if (!bar || event.target.id !== "upload" || !event.detail.lengthComputable) return;
    bar.hidden = false;
    bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
    bar.textContent = bar.value + "%";
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form.id === "upload") {
      var bar = document.getElementById("upload-progress");
      if (bar) { bar.hidden = true; bar.value = 0; }
      if (event.detail.successful) { form.reset(); flash("Upload finished; ingestion is under way."); }
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var text = event.detail.xhr.responseText || "";
    var doc = new DOMParser().parseFromString(text, "text/html");
    flash((doc.body && doc.body.textContent.trim()) || "The request failed (" + event.detail.xhr.status + ").");
  });

  document.addEventListener("htmx:sendError", function () {
    flash("The gateway did not answer: is it running?");
  });

  document.addEventListener("chat-sent", function () {
    var box = document.getElementById("chat-message");
    if (box) { box.value = ""; box.focus(); }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id === "conversation" || event.target.id === "conversation") {
      var last = document.querySelector("#conversation .turn:last-of-type");
      if (last) last.scrollIntoView({ block: "nearest" });
    }
  });

  // -- charts ----------------------------------------------------------------------------
  var PALETTE = ["#2f7ed8", "#e8710a", "#1e9e5a", "#c2185b", "#7b61ff", "#8d6e00", "#00838f", "#d32f2f", "#6d6d6d"];
  var plots = [];
  var COUNT_STEPS = [];
  for (var exp = 0; exp < 12; exp++) {
    [1, 2, 5].forEach(function (m) { COUNT_STEPS.push(m * Math.pow(10, exp)); });
  }

  function drawCharts() {
    var source = document.getElementById("usage-data");
    if (!source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    var style = getComputedStyle(document.documentElement);
    var fg = style.getPropertyValue("--muted").trim() || "#666";
    var grid = style.getPropertyValue("--line").trim() || "#ddd";
    plots.forEach(function (p) { p.destroy(); });
    plots = [];
    data.charts.forEach(function (chart) {
      var figure = document.querySelector('[data-chart="' + chart.id + '"] .plot');
      if (!figure) return;
      var sparse = chart.id === "ttft";
      var series = [{}].concat(chart.labels.map(function (label, i) {
        return {
          label: label,
          stroke: PALETTE[i % PALETTE.length],
          width: 2,
          spanGaps: false,
          points: { show: sparse || data.x.length < 40, size: 5 },
          value: function (u, v) { return v == null ? "—" : (sparse ? v.toFixed(0) + " ms" : v.toLocaleString()); },
        };
      }));
      var axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
      var yAxis = Object.assign({ size: 64 }, axis);
      if (!sparse) yAxis.incrs = COUNT_STEPS;  // whole requests and tokens, never 0.25
      var options = {
        width: Math.max(figure.clientWidth, 240),
        height: 220,
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
        scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(max || 0, 1) * 1.1]; } } },
        series: series,
        axes: [axis, yAxis],
      };
      plots.push(new uPlot(options, [data.x].concat(chart.values), figure));
    });
  }

  var resizeTimer = null;
  function redrawSoon() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawCharts, 150);
  }
  window.addEventListener("resize", redrawSoon);
  if (window.matchMedia) {
    var dark = window.matchMedia("(prefers-color-scheme: dark)");
    if (dark.addEventListener) dark.addEventListener("change", redrawSoon);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawCharts);
  else drawCharts();
})();
