// The console's only script (no inline scripts: the pages' CSP forbids them).
// Pages work without it; it adds the live overview (server-sent events) and the charts.
(function () {
  "use strict";
  function live(el) {
    if (!window.EventSource) { return; }
    var source = new EventSource(el.getAttribute("data-live"));
    source.addEventListener("health", function (event) {
      var template = document.createElement("template");
      template.innerHTML = event.data;
      var panel = template.content.firstElementChild;
      var old = el.querySelector("#health");
      if (panel && old) { old.replaceWith(panel); }
    });
  }
  function charts(el) {
    if (!window.uPlot || !window.fetch) { return; }
    fetch(el.getAttribute("data-series"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        el.textContent = "";
        var colours = ["#0550ae", "#116329", "#a40e26", "#6639ba", "#7d4e00"];
        var series = [{}];
        data.names.forEach(function (name, i) {
          series.push({ label: name, stroke: colours[i % colours.length], width: 1.5 });
        });
        var opts = { width: Math.min(el.clientWidth || 900, 1300), height: 220, series: series,
                     axes: [{}, { label: "per minute" }] };
        new window.uPlot(opts, [data.minutes].concat(data.values), el);
      })
      .catch(function () { /* the table link stays */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(live);
    document.querySelectorAll("[data-series]").forEach(charts);
  });
})();
