/* kagura monitor report: draws the charts and trace waterfalls from the page's JSON.
   Plain SVG, no library. Every text from the data is set with textContent (never as
   markup), so names, errors and arguments show as they are. */
"use strict";
(function () {
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";

  // --- helpers -------------------------------------------------------------------

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    for (var key in attrs) node.setAttribute(key, attrs[key]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function html(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var key in attrs || {}) node.setAttribute(key, attrs[key]);
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function titled(node, text) {
    node.appendChild(svg("title", {}, text));
    return node;
  }

  function money(value, unpriced) {
    if (value === null || value === undefined) return "n/a";
    if (unpriced && !value) return "?";
    var text;
    if (value === 0) text = "$0.00";
    else if (Math.abs(value) >= 1) text = "$" + value.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
    else {
      var digits = Math.min(15, Math.max(4, 1 - Math.floor(Math.log10(Math.abs(value)))));
      var parts = value.toFixed(digits).split("."), frac = (parts[1] || "").replace(/0+$/, "");
      while (frac.length < 4) frac += "0";
      text = "$" + parts[0] + "." + frac;
    }
    return text + (unpriced ? "+" : "");
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "-";
    if (seconds < 1) return (seconds * 1000).toFixed(seconds < 0.01 ? 1 : 0) + "ms";
    if (seconds < 60) return seconds.toFixed(2) + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m " + String(Math.round(seconds % 60)).padStart(2, "0") + "s";
    return Math.floor(seconds / 3600) + "h " + String(Math.floor((seconds % 3600) / 60)).padStart(2, "0") + "m";
  }

  function when(epoch) {
    if (epoch === null || epoch === undefined) return "-";
    var d = new Date(epoch * 1000);
    function two(n) { return String(n).padStart(2, "0"); }
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
      two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  }

  function cut(text, n) {
    text = String(text);
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  // Round tick values from 0 to at least `top`.
  function ticks(top, count) {
    if (!(top > 0)) return [0, 1];
    var raw = top / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * power; }).find(function (s) { return s >= raw; });
    var out = [];
    for (var v = 0; v < top + step * 0.999; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  function width(container, least) {
    return Math.max(least, Math.floor(container.clientWidth || 0) || least);
  }

  function empty(container, text) {
    container.appendChild(html("p", {class: "empty"}, text));
  }

  // --- cost per day: one bar per day with runs ------------------------------------

  function costPerDay(container) {
    var rows = DATA.cost_by_date;
    if (!rows.length) return empty(container, "No runs in this window.");
    var W = Math.max(width(container, 480), rows.length * 14 + 70), H = 240;
    var left = 64, right = 10, top = 10, bottom = 40;
    var plotW = W - left - right, plotH = H - top - bottom;
    var scale = ticks(Math.max.apply(null, rows.map(function (r) { return r.cost; })), 4);
    var yMax = scale[scale.length - 1] || 1;
    var root = svg("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H});
    scale.forEach(function (v) {
      var y = top + plotH - (v / yMax) * plotH;
      root.appendChild(svg("line", {x1: left, x2: W - right, y1: y, y2: y, class: "grid"}));
      root.appendChild(svg("text", {x: left - 6, y: y + 4, "text-anchor": "end", class: "tick"}, money(v)));
    });
    var slot = plotW / rows.length, barW = Math.max(3, Math.min(40, slot * 0.7));
    var every = Math.ceil(rows.length / Math.max(1, Math.floor(plotW / 70)));
    rows.forEach(function (r, i) {
      var h = Math.max(2, (r.cost / yMax) * plotH);  // a day with runs always shows
      var x = left + slot * i + (slot - barW) / 2;
      var bar = svg("rect", {x: x, y: top + plotH - h, width: barW, height: h,
        class: "bar" + (r.unpriced_calls && !r.cost ? " unpriced" : ""), "data-date": r.date});
      titled(bar, r.date + ": " + money(r.cost, r.unpriced_calls) + " over " + r.calls + " run(s)" +
        (r.failed ? ", " + r.failed + " failed" : "") +
        (r.unpriced_calls ? "; " + r.unpriced_calls + " LLM call(s) with no known price" : ""));
      root.appendChild(bar);
      if (i % every === 0) {
        root.appendChild(svg("text", {x: left + slot * i + slot / 2, y: H - bottom + 16,
          "text-anchor": "middle", class: "tick"}, r.date.slice(5)));
      }
    });
    root.appendChild(svg("line", {x1: left, x2: W - right, y1: top + plotH, y2: top + plotH, class: "axis"}));
    container.appendChild(root);
  }

  // --- cost per agent: horizontal bars --------------------------------------------

  function costPerAgent(container) {
    var rows = DATA.cost_by_agent.slice(0, 15);
    if (!rows.length) return empty(container, "No runs in this window.");
    var W = width(container, 480), rowH = 22, left = 180, right = 110;
    var H = rows.length * rowH + 10;
    var top = Math.max.apply(null, rows.map(function (r) { return r.cost; })) || 1;
    var root = svg("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H});
    rows.forEach(function (r, i) {
      var y = 4 + i * rowH, w = Math.max(2, (r.cost / top) * (W - left - right));
      root.appendChild(titled(svg("text", {x: left - 8, y: y + 14, "text-anchor": "end"}, cut(r.agent_name, 26)), r.agent_name));
      var bar = svg("rect", {x: left, y: y + 3, width: w, height: rowH - 8, class: "bar" + (r.unpriced_calls && !r.cost ? " unpriced" : "")});
      titled(bar, r.agent_name + ": " + money(r.cost, r.unpriced_calls) + " over " + r.calls + " run(s)");
      root.appendChild(bar);
      root.appendChild(svg("text", {x: left + w + 6, y: y + 14, class: "tick"}, money(r.cost, r.unpriced_calls)));
    });
    container.appendChild(root);
    if (DATA.cost_by_agent.length > rows.length) {
      container.appendChild(html("p", {class: "note"}, (DATA.cost_by_agent.length - rows.length) + " cheaper agent(s) not drawn."));
    }
  }

  // --- latency per agent over time: small multiples ---------------------------------

  function latencyCharts(container) {
    var rows = DATA.latency_by_day;
    if (!rows.length) return;
    var days = Array.from(new Set(rows.map(function (r) { return r.date; }))).sort();
    var agents = [];
    rows.forEach(function (r) { if (agents.indexOf(r.agent_name) < 0) agents.push(r.agent_name); });
    var legend = html("p", {class: "legend"});
    ["p50", "p95", "p99"].forEach(function (k) {
      var item = html("span"); item.appendChild(html("span", {class: "swatch k-" + k})); item.appendChild(document.createTextNode(k));
      legend.appendChild(item);
    });
    container.parentNode.insertBefore(legend, container);
    agents.forEach(function (agent) {
      var mine = rows.filter(function (r) { return r.agent_name === agent; });
      var figure = html("figure", {class: "latency", "data-agent": agent});
      figure.appendChild(html("figcaption", {}, agent));
      container.appendChild(figure);
      var W = width(figure, 340) - 16, H = 150, left = 52, right = 8, top = 8, bottom = 22;
      var plotW = W - left - right, plotH = H - top - bottom;
      var scale = ticks(Math.max.apply(null, mine.map(function (r) { return r.p99; })), 3);
      var yMax = scale[scale.length - 1] || 1;
      var root = svg("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H});
      function x(date) { return left + (days.length < 2 ? plotW / 2 : (days.indexOf(date) / (days.length - 1)) * plotW); }
      function y(v) { return top + plotH - (v / yMax) * plotH; }
      scale.forEach(function (v) {
        root.appendChild(svg("line", {x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid"}));
        root.appendChild(svg("text", {x: left - 4, y: y(v) + 4, "text-anchor": "end", class: "tick"}, duration(v)));
      });
      root.appendChild(svg("text", {x: left, y: H - 6, class: "tick"}, days[0].slice(5)));
      if (days.length > 1) root.appendChild(svg("text", {x: W - right, y: H - 6, "text-anchor": "end", class: "tick"}, days[days.length - 1].slice(5)));
      ["p99", "p95", "p50"].forEach(function (k) {
        var points = mine.map(function (r) { return x(r.date).toFixed(1) + "," + y(r[k]).toFixed(1); });
        if (points.length > 1) root.appendChild(svg("polyline", {points: points.join(" "), class: k}));
        mine.forEach(function (r) {
          root.appendChild(titled(svg("circle", {cx: x(r.date), cy: y(r[k]), r: 2.5, class: "dot-" + k}),
            agent + " " + r.date + " " + k + ": " + duration(r[k]) + " (" + r.runs + " runs)"));
        });
      });
      figure.appendChild(root);
    });
  }

  // --- trace waterfalls ----------------------------------------------------------------

  function rowsOf(trace) {
    // Runs depth first (children under their parent, oldest first), each followed by its events.
    var byParent = {}, ids = {};
    trace.runs.forEach(function (run) { ids[run.id] = true; });
    trace.runs.forEach(function (run) {
      var parent = run.parent_id && ids[run.parent_id] ? run.parent_id : "";
      (byParent[parent] = byParent[parent] || []).push(run);
    });
    var out = [];
    function visit(run, depth) {
      out.push({kind: "run", item: run, depth: depth, start: run.started_at, length: run.duration});
      var children = (byParent[run.id] || []).map(function (c) { return {kind: "child", item: c}; });
      var events = run.events.map(function (e) { return {kind: "event", item: e}; });
      events.concat(children).sort(function (a, b) { return a.item.started_at - b.item.started_at; })
        .forEach(function (entry) {
          if (entry.kind === "child") visit(entry.item, depth + 1);
          else out.push({kind: "event", item: entry.item, depth: depth + 1, start: entry.item.started_at, length: entry.item.duration || 0});
        });
    }
    (byParent[""] || []).forEach(function (run) { visit(run, 0); });
    return out;
  }

  function label(row) {
    var item = row.item;
    if (row.kind === "run") return item.agent_name;
    var name = item.name || item.type;
    return (item.type === "llm_call" ? "LLM " : item.type === "tool_call" ? "tool " : item.type === "memory_operation" ? "memory " : item.type + " ") + name;
  }

  function showWaterfall(traceId) {
    var trace = DATA.traces[traceId];
    var box = document.getElementById("waterfall");
    var chart = document.getElementById("waterfall-chart");
    var detail = document.getElementById("waterfall-detail");
    chart.textContent = ""; detail.textContent = "";
    box.hidden = false;
    document.querySelectorAll("#runs-table tbody tr").forEach(function (tr) {
      tr.classList.toggle("selected", tr.getAttribute("data-trace") === traceId);
    });
    if (!trace) {
      document.getElementById("waterfall-title").textContent = "Trace " + traceId + " is not in this page";
      return;
    }
    var rows = rowsOf(trace);
    var t0 = Math.min.apply(null, rows.map(function (r) { return r.start; }));
    var t1 = Math.max.apply(null, rows.map(function (r) { return r.start + (r.length || 0); }));
    var span = Math.max(t1 - t0, 1e-6);
    document.getElementById("waterfall-title").textContent =
      "Trace " + traceId + ": " + trace.runs[0].agent_name + ", " + duration(span) + ", started " + when(t0);
    var W = width(chart, 640), rowH = 20, left = 280, right = 70, top = 24;
    var plotW = W - left - right, H = top + rows.length * rowH + 6;
    var root = svg("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H});
    [0, 0.25, 0.5, 0.75, 1].forEach(function (f) {
      var x = left + f * plotW;
      root.appendChild(svg("line", {x1: x, x2: x, y1: top - 4, y2: H, class: "grid"}));
      root.appendChild(svg("text", {x: x, y: top - 8, "text-anchor": f === 1 ? "end" : "middle", class: "tick"}, duration(f * span)));
    });
    rows.forEach(function (row, i) {
      var y = top + i * rowH, item = row.item;
      var g = svg("g", {class: "row " + row.kind, "data-index": i, tabindex: 0});
      g.appendChild(svg("rect", {x: 0, y: y, width: W, height: rowH, class: "back"}));
      g.appendChild(titled(svg("text", {x: 6 + row.depth * 14, y: y + 14, class: "label"}, cut(label(row), 40 - row.depth * 2)), label(row)));
      var x = left + ((row.start - t0) / span) * plotW;
      var w = Math.max(2, ((row.length || 0) / span) * plotW);
      var kind = row.kind === "run" ? "span-run " + item.status :
        (["llm_call", "tool_call", "memory_operation"].indexOf(item.type) >= 0 ? "span-" + item.type : "span-other");
      g.appendChild(svg("rect", {x: x, y: y + 4, width: w, height: rowH - 8, rx: 2, class: "span " + kind}));
      g.appendChild(svg("text", {x: Math.min(x + w + 4, W - right + 4), y: y + 14, class: "tick"}, duration(row.length)));
      g.addEventListener("click", function () { showDetail(rows, i); });
      g.addEventListener("keydown", function (e) { if (e.key === "Enter") showDetail(rows, i); });
      root.appendChild(g);
    });
    chart.appendChild(root);
    var left_out = [];
    if (trace.runs_left_out) left_out.push(trace.runs_left_out + " run(s)");
    if (trace.events_left_out) left_out.push(trace.events_left_out + " event(s)");
    document.getElementById("waterfall-note").textContent =
      rows.length + " row(s); click one for its details." + (left_out.length ? " Not embedded: " + left_out.join(" and ") + "." : "");
    showDetail(rows, 0);
    box.scrollIntoView({block: "nearest"});
  }

  function showDetail(rows, index) {
    var row = rows[index], item = row.item;
    var detail = document.getElementById("waterfall-detail");
    detail.textContent = "";
    document.querySelectorAll("#waterfall-chart .row").forEach(function (g) {
      g.classList.toggle("selected", Number(g.getAttribute("data-index")) === index);
    });
    var list = html("dl");
    function add(name, value, pre) {
      if (value === null || value === undefined || value === "") return;
      list.appendChild(html("dt", {}, name));
      var dd = html("dd");
      dd.appendChild(html(pre ? "pre" : "span", {}, String(value)));
      list.appendChild(dd);
    }
    if (row.kind === "run") {
      add("Run", item.id); add("Agent", item.agent_name); add("Status", item.status);
      add("Started", when(item.started_at)); add("Duration", duration(item.duration));
      add("Session", item.session_id); add("User", item.user_id);
      add("Model", item.model); add("Cost", money(item.cost, item.unpriced_calls));
      add("Tokens", item.tokens);
      add("Error", item.error ? (item.error_type ? item.error_type + ": " : "") + item.error : null, true);
      add("Arguments", item.kwargs, true);
      add("Tags", item.tags, true); add("Metadata", item.metadata, true);
      if (item.scores && item.scores.length) {
        add("Scores", item.scores.map(function (sc) {
          return sc.name + " = " + String(sc.value) + (sc.comment ? " (" + sc.comment + ")" : "");
        }).join("\n"), true);
      }
    } else {
      add("Event", item.type); add("Name", item.name); add("Started", when(item.started_at));
      add("Duration", duration(item.duration)); add("Status", item.status);
      add("Tokens", item.tokens); add("Cost", item.cost === null ? (item.type === "llm_call" ? "unknown (no price for this model)" : null) : money(item.cost));
      add("Error", item.error, true); add("Data", item.data, true);
    }
    detail.appendChild(list);
  }

  function wireRuns() {
    document.querySelectorAll("#runs-table tbody tr").forEach(function (tr) {
      var id = tr.getAttribute("data-trace");
      tr.addEventListener("click", function () { showWaterfall(id); });
      tr.addEventListener("keydown", function (e) { if (e.key === "Enter") showWaterfall(id); });
    });
  }

  function draw() {
    var byId = function (id) { return document.getElementById(id); };
    if (byId("chart-cost-day")) costPerDay(byId("chart-cost-day"));
    if (byId("chart-cost-agent")) costPerAgent(byId("chart-cost-agent"));
    if (byId("latency-charts")) latencyCharts(byId("latency-charts"));
    if (byId("runs-table")) wireRuns();
    document.body.setAttribute("data-drawn", "true");
  }

  draw();
})();
