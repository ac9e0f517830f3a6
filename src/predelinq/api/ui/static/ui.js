// Hands each chart's figure (built on the server, api/ui/charts.py) to Plotly; marks it
// data-rendered="true" once drawn. The only script of the dashboard besides Plotly's own.
"use strict";
document.querySelectorAll(".chart[data-figure]").forEach(function (div) {
  var figure = JSON.parse(div.getAttribute("data-figure"));
  var config = { displaylogo: false, responsive: true };
  Plotly.newPlot(div, figure.data, figure.layout, config).then(function () {
    div.setAttribute("data-rendered", "true");
  });
});
