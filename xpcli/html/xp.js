/* xp's page script: draws the views whose JSON sits in <script type="application/json">.
 * Text from the data (run ids, params, labels) reaches the document only through
 * textContent, or through esc() where ECharts wants an HTML string; ECharts draws the
 * rest on a canvas. Nothing here loads anything. */
(function () {
  'use strict';
  var xp = window.xp = { views: [] };

  function esc(s) {
    return String(s).replace(/[&<>"'`]/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
        '`': '&#96;' }[c];
    });
  }
  xp.esc = esc;

  function fmt(v) {
    if (v === null || v === undefined) return '(none)';
    if (typeof v === 'number') {
      if (!isFinite(v)) return String(v);
      var a = Math.abs(v);
      if (v !== 0 && (a < 1e-3 || a >= 1e5)) {
        return v.toExponential(3).replace(/\.?0+e/, 'e').replace('e+', 'e');
      }
      return String(Number(v.toPrecision(4)));
    }
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    return String(v);
  }
  xp.fmt = fmt;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function csvCell(v) {
    if (v === null || v === undefined) return '';
    var s = typeof v === 'number' ? String(v) : String(v);
    // As xp's CSV: a cell a spreadsheet would run as a formula gets a leading '.
    if (typeof v !== 'number' && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
    if (/[",\n\r]/.test(s)) s = '"' + s.replace(/"/g, '""') + '"';
    return s;
  }

  function copyText(text, area) {
    area.value = text;
    area.style.display = 'block';
    area.select();
    var done = false;
    try { done = document.execCommand('copy'); } catch (e) { done = false; }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).catch(function () {});
    }
    return done;
  }

  /* A sortable table of rows (arrays), at most `limit` shown; header click sorts. */
  function Table(host, columns, limit) {
    this.columns = columns;
    this.limit = limit;
    this.sortCol = -1;
    this.sortDir = 1;
    this.wrap = el('div', 'xp-table-wrap');
    this.table = el('table');
    this.thead = el('thead');
    this.tbody = el('tbody');
    this.table.appendChild(this.thead);
    this.table.appendChild(this.tbody);
    this.wrap.appendChild(this.table);
    host.appendChild(this.wrap);
    var self = this;
    var tr = el('tr');
    columns.forEach(function (name, j) {
      var th = el('th', null, name);
      th.addEventListener('click', function () { self.sortBy(j); });
      tr.appendChild(th);
    });
    this.thead.appendChild(tr);
    this.rows = [];
    this.marks = {};
  }
  Table.prototype.sortBy = function (j) {
    this.sortDir = this.sortCol === j ? -this.sortDir : 1;
    this.sortCol = j;
    var ths = this.thead.querySelectorAll('th');
    for (var k = 0; k < ths.length; k++) {
      ths[k].className = k === j ? (this.sortDir > 0 ? 'sorted-asc' : 'sorted-desc') : '';
    }
    this.render();
  };
  Table.prototype.set = function (rows, marks) {
    this.rows = rows;
    this.marks = marks || {};
    this.render();
  };
  Table.prototype.sorted = function () {
    var j = this.sortCol, dir = this.sortDir, rows = this.rows.slice();
    if (j >= 0) {
      rows.sort(function (a, b) {
        var x = a.cells[j], y = b.cells[j];
        if (x === null || x === undefined) return (y === null || y === undefined) ? 0 : 1;
        if (y === null || y === undefined) return -1;
        if (typeof x === 'number' && typeof y === 'number') return dir * (x - y);
        return dir * String(x).localeCompare(String(y), undefined, { numeric: true });
      });
    }
    return rows;
  };
  Table.prototype.render = function () {
    var rows = this.sorted(), body = el('tbody'), n = Math.min(rows.length, this.limit);
    for (var i = 0; i < n; i++) {
      var tr = el('tr');
      var mark = this.marks[rows[i].key];
      if (mark) { tr.className = 'xp-hl'; tr.style.color = mark; }
      rows[i].cells.forEach(function (v) {
        var td = el('td', typeof v === 'number' ? 'num' : null,
          typeof v === 'number' ? fmt(v) : (v === null ? '' : v));
        if (typeof v === 'number') td.title = String(v);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
    this.table.replaceChild(body, this.tbody);
    this.tbody = body;
  };
  Table.prototype.csv = function () {
    var lines = [this.columns.map(csvCell).join(',')];
    this.sorted().forEach(function (r) { lines.push(r.cells.map(csvCell).join(',')); });
    return lines.join('\n') + '\n';
  };

  function header(root, spec) {
    root.appendChild(el('div', 'xp-title', spec.title));
    if (spec.subtitle) root.appendChild(el('div', 'xp-sub', spec.subtitle));
    (spec.notes || []).forEach(function (n) { root.appendChild(el('div', 'xp-sub', n)); });
  }

  function colorKey(bar, key) {
    if (!key) return;
    var box = el('div', 'xp-key');
    box.appendChild(el('span', null, key.label + (key.log ? ' (log scale)' : '') + ':'));
    if (key.kind === 'continuous') {
      box.appendChild(el('span', null, key.lo));
      var g = el('span', 'xp-gradient');
      g.style.background = 'linear-gradient(to right, ' + key.stops.join(', ') + ')';
      box.appendChild(g);
      box.appendChild(el('span', null, key.hi));
    } else {
      key.items.forEach(function (it) {
        var s = el('span', 'xp-swatch');
        s.style.background = it.color;
        box.appendChild(s);
        box.appendChild(el('span', null, it.label));
      });
    }
    bar.appendChild(box);
  }

  function tipBox(host) {
    var tip = el('div', 'xp-tip');
    host.appendChild(tip);
    return tip;
  }

  /* Tooltip content as escaped HTML for ECharts: [[label, value], ...] under a title. */
  function tipHtml(title, pairs) {
    var out = '<b>' + esc(title) + '</b>';
    pairs.forEach(function (p) { out += '<br>' + esc(p[0]) + ': ' + esc(fmt(p[1])); });
    return out;
  }

  // -- parallel coordinates --------------------------------------------------------------

  function parcoords(root, spec) {
    header(root, spec);
    var bar = el('div', 'xp-bar');
    var count = el('span', 'xp-count');
    var reset = el('button', null, 'Clear brushes');
    var copy = el('button', null, 'Copy kept runs as CSV');
    bar.appendChild(count);
    bar.appendChild(reset);
    bar.appendChild(copy);
    colorKey(bar, spec.colorbar);
    root.appendChild(bar);
    var hlBar = el('div', 'xp-bar');
    spec.highlights.forEach(function (h) {
      var s = el('span', 'xp-swatch');
      s.style.background = h.color;
      s.style.height = '4px';
      hlBar.appendChild(s);
      hlBar.appendChild(el('span', null, h.label));
    });
    if (spec.highlights.length) root.appendChild(hlBar);
    var chartDiv = el('div', 'xp-chart');
    root.appendChild(chartDiv);
    root.appendChild(el('div', 'xp-sub', 'Drag along an axis to keep the runs inside ' +
      'the range (on several axes at once); click an axis outside its range to clear it. ' +
      'Hover a line to see its run.'));
    var area = el('textarea', 'xp-csv');
    area.readOnly = true;
    root.appendChild(area);
    var n = spec.runs.length;
    var table = new Table(root, spec.table.columns, 1000);
    var chart = echarts.init(chartDiv, null, { renderer: 'canvas' });
    var hl = {};
    spec.highlights.forEach(function (h) { hl[h.index] = h; });
    var data = spec.order.map(function (i) {
      var h = hl[i];
      return {
        value: spec.values[i],
        lineStyle: h ? { color: h.color, width: 3.2, opacity: 1 } :
          { color: spec.colors[i], width: spec.width, opacity: Math.max(spec.opacity, 0.05) }
      };
    });
    var axes = spec.axes.map(function (a, j) {
      var ax = {
        id: 'xp-axis-' + j, dim: j, name: a.label, type: a.type, inverse: !!a.inverse,
        nameLocation: 'end', nameGap: 14, nameTextStyle: { fontSize: 11, color: '#333' },
        axisLabel: { fontSize: 10, formatter: a.type === 'category' ? undefined : fmt },
        realtime: true
      };
      if (a.type === 'category') ax.data = a.categories;
      else { ax.min = a.min; ax.max = a.max; }
      if (a.missingAt !== undefined) {
        // Ticks only over the values; the band beyond them holds the runs without one,
        // at the axis' end (always a tick), labelled there as in the PNG.
        var span = Math.max(Math.abs(a.dataMax - a.dataMin), Math.abs(a.dataMax)) * 1e-9;
        ax.axisLabel.formatter = function (v) {
          if (Math.abs(v - a.missingAt) <= span) return '{missing|(missing)}';
          return v < a.dataMin - span || v > a.dataMax + span ? '' : fmt(v);
        };
        ax.axisLabel.rich = { missing: { color: '#777', fontStyle: 'italic', fontSize: 10,
          backgroundColor: 'rgba(255,255,255,0.85)', padding: [1, 2] } };
        ax.z = 10;  // above the runs, as in the PNG: the label is never under a line
        ax.axisLabel.showMinLabel = true;
        ax.axisLabel.showMaxLabel = true;
      }
      return ax;
    });
    var params = spec.params;
    function describe(i) {
      var pairs = [];
      params.names.forEach(function (name, k) { pairs.push([name, params.rows[i][k]]); });
      var seen = {};
      params.names.forEach(function (nm) { seen[nm] = true; });
      spec.table.columns.forEach(function (name, k) {
        if (k === 0 || seen[name]) return;
        pairs.push([name, spec.table.rows[i][k]]);
      });
      return pairs;
    }
    chart.setOption({
      animation: false,
      parallel: { left: 70, right: 90, top: 50, bottom: 36,
        parallelAxisDefault: { areaSelectStyle: { width: 18, opacity: 0.35 } } },
      parallelAxis: axes,
      tooltip: {
        trigger: 'item', confine: true, transitionDuration: 0,
        formatter: function (p) {
          var i = spec.order[p.dataIndex];
          return tipHtml(spec.runs[i], describe(i));
        }
      },
      series: [{
        type: 'parallel', data: data, smooth: false, silent: false,
        inactiveOpacity: 0.03, activeOpacity: 1,
        progressive: 0,
        emphasis: { lineStyle: { width: 3, opacity: 1 } }
      }]
    });
    // The brushes of each axis, as the chart's public event reports them (an axis' id
    // or index, its intervals); a run is kept when on every brushed axis its value is
    // inside one of the axis' intervals (ECharts' own rule for the lines it keeps lit).
    var brushes = {};
    function brushed(e) {
      var j = e.parallelAxisIndex;
      if (j === undefined || j === null) {
        var m = /^xp-axis-(\d+)$/.exec(String(e.parallelAxisId));
        j = m ? Number(m[1]) : -1;
      }
      if (j < 0 || j >= spec.axes.length) return;
      brushes[j] = (e.intervals || []).map(function (iv) {
        return [Math.min(iv[0], iv[1]), Math.max(iv[0], iv[1])];
      });
      update();
    }
    function kept() {
      var axesOn = Object.keys(brushes).filter(function (j) { return brushes[j].length; });
      var out = [];
      for (var i = 0; i < n; i++) {
        var inside = axesOn.every(function (j) {
          var v = spec.values[i][j];
          return v !== null && brushes[j].some(function (iv) { return iv[0] <= v && v <= iv[1]; });
        });
        if (inside) out.push(i);
      }
      return out;
    }
    function update() {
      var idx = kept().sort(function (a, b) { return a - b; });
      count.textContent = idx.length === n ? 'all ' + n.toLocaleString('en') + ' runs kept'
        : idx.length.toLocaleString('en') + ' of ' + n.toLocaleString('en') + ' runs kept';
      var marks = {};
      spec.highlights.forEach(function (h) { marks[h.index] = h.color; });
      table.set(idx.map(function (i) { return { key: i, cells: spec.table.rows[i] }; }), marks);
      view.keptRuns = idx.map(function (i) { return spec.runs[i]; });
    }
    chart.on('axisareaselected', brushed);
    reset.addEventListener('click', function () {
      spec.axes.forEach(function (a, j) {
        chart.dispatchAction({ type: 'axisAreaSelect', parallelAxisId: undefined,
          parallelAxisIndex: j, intervals: [] });
      });
      update();
    });
    copy.addEventListener('click', function () {
      copyText(table.csv(), area);
      copy.textContent = 'Copied (also in the box below)';
    });
    var view = { kind: 'parcoords', chart: chart, spec: spec, update: update, keptRuns: [],
      table: table, count: count, brushes: brushes };
    update();
    window.addEventListener('resize', function () { chart.resize(); });
    return view;
  }

  // -- lines: curves, aggregate, forgetting ----------------------------------------------

  function gridLayout(n) {
    var cols = Math.max(1, n === 4 ? 2 : Math.min(n, 3));
    var rows = Math.max(1, Math.ceil(n / cols));
    return { cols: cols, rows: rows };
  }

  function lines(root, spec) {
    // Lines sharing their x values carry an index into spec.xs instead of a copy.
    spec.lines.forEach(function (ln) { if (ln.x === undefined) ln.x = spec.xs[ln.xi]; });
    header(root, spec);
    var bar = el('div', 'xp-bar');
    var reset = el('button', null, 'Reset zoom');
    bar.appendChild(reset);
    colorKey(bar, spec.colorbar);
    root.appendChild(bar);
    var layout = gridLayout(spec.panels.length);
    var chartDiv = el('div', 'xp-chart');
    var legendRows = Math.ceil(spec.legend.length / 6);
    chartDiv.style.height = (layout.rows * 300 + 70 + 22 * legendRows) + 'px';
    root.appendChild(chartDiv);
    root.appendChild(el('div', 'xp-sub', 'Hover a line to see its ' + (spec.what || 'run') +
      '; click a legend entry to hide or show it; drag a box with the zoom tool (top ' +
      'right) or scroll to zoom, "Reset zoom" to go back.'));
    var chart = echarts.init(chartDiv, null, { renderer: 'canvas' });
    var top = 40 + 22 * legendRows, gapX = 6, gapY = 12;
    var grids = [], xAxes = [], yAxes = [];
    spec.panels.forEach(function (p, k) {
      var c = k % layout.cols, r = Math.floor(k / layout.cols);
      var w = (100 - gapX * (layout.cols + 1)) / layout.cols;
      var hpx = 300;
      grids.push({ left: (gapX + c * (w + gapX)) + '%', width: w + '%',
        top: top + r * hpx + 20, height: hpx - 70, containLabel: false });
      xAxes.push({ gridIndex: k, type: spec.logx ? 'log' : 'value', name: p.xLabel,
        nameLocation: 'middle', nameGap: 24, scale: true,
        minInterval: spec.xInteger ? 1 : undefined,
        axisLabel: { fontSize: 10, formatter: fmt }, splitLine: { lineStyle: { opacity: 0.4 } } });
      yAxes.push({ gridIndex: k, type: spec.logy ? 'log' : 'value', name: p.yLabel,
        nameLocation: 'middle', nameGap: 40, scale: true,
        axisLabel: { fontSize: 10, formatter: fmt }, splitLine: { lineStyle: { opacity: 0.4 } } });
    });
    if (spec.shareY) {
      // Panels of one metric share their y range, as in the PNG.
      var lo = Infinity, hi = -Infinity;
      function take(v) { if (v !== null && (!spec.logy || v > 0)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
      spec.lines.forEach(function (ln) { ln.y.forEach(take); });
      spec.bands.forEach(function (b) { b.lo.forEach(take); b.hi.forEach(take); });
      spec.markers.forEach(function (m) { take(m.y); });
      if (lo < hi && !spec.logy) {
        var step = Math.pow(10, Math.floor(Math.log10(hi - lo)) - 1);
        var ylo = Math.floor((lo - (hi - lo) * 0.02) / step) * step;
        var yhi = Math.ceil((hi + (hi - lo) * 0.02) / step) * step;
        yAxes.forEach(function (a) {
          a.min = Number(ylo.toPrecision(6)); a.max = Number(yhi.toPrecision(6)); a.scale = false;
        });
      }
    }
    var titles = spec.panels.map(function (p, k) {
      var c = k % layout.cols, r = Math.floor(k / layout.cols);
      var w = (100 - gapX * (layout.cols + 1)) / layout.cols;
      return { text: p.title, left: (gapX + c * (w + gapX) + w / 2) + '%', top: top + r * 300,
        textAlign: 'center', textStyle: { fontSize: 12, fontWeight: 'normal' } };
    });
    var series = [];
    var meta = [];  // per series: the line it draws (null for band parts)
    spec.bands.forEach(function (b) {
      // One polygon per band (low edge forward, high edge back), drawn by a custom series;
      // its data (every low and high point) sets the axis range, only item 0 draws.
      var pts = [];
      b.x.forEach(function (x, i) {
        if (x !== null && b.lo[i] !== null && b.hi[i] !== null) pts.push([x, b.lo[i], b.hi[i]]);
      });
      var data = [];
      pts.forEach(function (q) { data.push([q[0], q[1]]); data.push([q[0], q[2]]); });
      series.push({ type: 'custom', name: b.name, xAxisIndex: b.p, yAxisIndex: b.p,
        silent: true, z: 1, clip: true, data: data, encode: { x: 0, y: 1 },
        renderItem: function (params, api) {
          if (params.dataIndex !== 0 || !pts.length) return null;
          var poly = [];
          pts.forEach(function (q) { poly.push(api.coord([q[0], q[1]])); });
          for (var i = pts.length - 1; i >= 0; i--) poly.push(api.coord([pts[i][0], pts[i][2]]));
          return { type: 'polygon', shape: { points: poly },
            style: { fill: b.color, opacity: 0.2, stroke: null } };
        } });
      meta.push(null);
    });
    // Lines that look alike (panel, legend entry, colour, width) go into one series of
    // ECharts' "lines" type, drawn as one path in its large mode: thousands of runs cost
    // tens of series, not thousands, and no object per point. Each unbroken stretch of a
    // run is one polyline of the flat data ([count, x, y, x, y, ...]). Hover reads
    // spec.lines (nearest() below), so it still finds each run.
    var batches = {}, batchOrder = [];
    function lineSeries(ln, data, few) {
      return { type: 'line', name: ln.name === null ? '' : ln.name,
        xAxisIndex: ln.p, yAxisIndex: ln.p, data: data, silent: true,
        showSymbol: few, symbol: 'circle', symbolSize: few ? 5 : 0, connectNulls: false,
        lineStyle: { color: ln.color, width: ln.width, opacity: ln.opacity },
        itemStyle: { color: ln.color }, z: ln.z || 2, zlevel: 0,
        emphasis: { disabled: true } };
    }
    function usable(v, log) { return v !== null && (!log || v > 0); }
    spec.lines.forEach(function (ln) {
      var few = ln.y.filter(function (v) { return v !== null; }).length < 3;
      if (few) {
        series.push(lineSeries(ln, ln.x.map(function (x, i) { return [x, ln.y[i]]; }), true));
        meta.push(ln);
        return;
      }
      var key = [ln.p, ln.name, ln.color, ln.width, ln.opacity, ln.z].join('|');
      var batch = batches[key];
      if (!batch) {
        batch = batches[key] = { ln: ln, flat: [], box: [Infinity, Infinity, -Infinity, -Infinity] };
        batchOrder.push(key);
      }
      var flat = batch.flat, box = batch.box, i = 0, n = ln.x.length;
      while (i < n) {
        while (i < n && (ln.x[i] === null || ln.y[i] === null)) i++;
        var start = i;
        while (i < n && ln.x[i] !== null && ln.y[i] !== null) i++;
        if (i - start < 2) continue;  // a lone point draws no line (nor did a line series)
        flat.push(i - start);
        for (var k = start; k < i; k++) {
          var x = ln.x[k], y = ln.y[k];
          flat.push(x, y);
          if (usable(x, spec.logx)) { box[0] = Math.min(box[0], x); box[2] = Math.max(box[2], x); }
          if (usable(y, spec.logy)) { box[1] = Math.min(box[1], y); box[3] = Math.max(box[3], y); }
        }
      }
    });
    batchOrder.forEach(function (key) {
      var b = batches[key], ln = b.ln, name = ln.name === null ? '' : ln.name;
      series.push({ type: 'lines', name: name, coordinateSystem: 'cartesian2d',
        xAxisIndex: ln.p, yAxisIndex: ln.p, polyline: true, large: true, largeThreshold: 50,
        progressive: 0, silent: true, data: new Float64Array(b.flat), z: ln.z || 2,
        lineStyle: { color: ln.color, width: ln.width, opacity: ln.opacity },
        emphasis: { disabled: true }, tooltip: { show: false } });
      meta.push(ln);
      // The "lines" type leaves the axes' ranges alone: two invisible points at the
      // corners of the batch's box set them (hidden with its legend entry, as the lines).
      if (b.box[0] <= b.box[2] && b.box[1] <= b.box[3]) {
        series.push({ type: 'scatter', name: name, xAxisIndex: ln.p, yAxisIndex: ln.p,
          data: [[b.box[0], b.box[1]], [b.box[2], b.box[3]]], symbolSize: 0, silent: true,
          itemStyle: { opacity: 0 }, tooltip: { show: false }, z: 0 });
        meta.push(null);
      }
    });
    spec.markers.forEach(function (m) {
      series.push({ type: 'scatter', name: m.name === null ? '' : m.name,
        xAxisIndex: m.p, yAxisIndex: m.p, data: [[m.x, m.y]], symbolSize: 9, z: 5,
        itemStyle: { color: m.color, borderColor: '#fff', borderWidth: 1.2 },
        tooltip: { show: true, formatter: function () {
          return tipHtml(m.label, [['x', m.x], ['value', m.y]]);
        } } });
      meta.push(null);
    });
    var legendData = spec.legend.map(function (l) {
      return { name: l.name, itemStyle: { color: l.color }, lineStyle: { color: l.color } };
    });
    var zoomAxes = xAxes.map(function (_, k) { return k; });
    chart.setOption({
      animation: false,
      title: titles,
      legend: { data: legendData, top: 0, type: 'plain', left: 'center', itemWidth: 18,
        textStyle: { fontSize: 11 } },
      grid: grids, xAxis: xAxes, yAxis: yAxes,
      tooltip: { trigger: 'item', confine: true },
      toolbox: { right: 10, top: top - 24,
        feature: { dataZoom: { xAxisIndex: zoomAxes, yAxisIndex: zoomAxes,
          title: { zoom: 'Zoom a box', back: 'Back' } } } },
      dataZoom: [{ type: 'inside', xAxisIndex: zoomAxes, filterMode: 'none' }],
      series: series
    });
    var hidden = {};
    ['legendselectchanged', 'legendselected', 'legendunselected', 'legendselectall',
      'legendinverseselect'].forEach(function (name) {
      chart.on(name, function (e) {
        hidden = {};
        Object.keys(e.selected).forEach(function (k) { if (!e.selected[k]) hidden[k] = true; });
        clearHover();
      });
    });
    reset.addEventListener('click', function () {
      chart.dispatchAction({ type: 'dataZoom', start: 0, end: 100 });
      chart.dispatchAction({ type: 'restore' });
      hidden = {};
    });
    // A zoom moves every line: the bold copy of the hovered one goes until the next move.
    chart.on('datazoom', function () { if (view.hovered !== null) clearHover(); });
    chart.on('restore', function () { if (view.hovered !== null) clearHover(); });
    var tip = tipBox(chartDiv);
    // The hovered line is drawn bold on a canvas of its own over the chart: redrawing
    // the chart (thousands of runs) on every pointer move would take a second.
    var overlay = el('canvas', 'xp-overlay');
    chartDiv.appendChild(overlay);
    function clearOverlay() {
      overlay.getContext('2d').clearRect(0, 0, overlay.width, overlay.height);
    }
    function clearHover() {
      tip.style.display = 'none';
      clearOverlay();
      view.hovered = null;
    }
    /* The panel's data-to-pixel maps (in log10 on a log axis), read off two points. */
    function pixelMaps(panel) {
      var fx = spec.logx ? Math.log10 : Number, fy = spec.logy ? Math.log10 : Number;
      var a = spec.logx ? 1 : 0, b = spec.logy ? 1 : 0;
      var p0 = chart.convertToPixel({ gridIndex: panel }, [a, b]);
      var p1 = chart.convertToPixel({ gridIndex: panel }, [spec.logx ? 10 : 1, spec.logy ? 10 : 1]);
      var sx = p1[0] - p0[0], sy = p1[1] - p0[1];
      return {
        x: function (v) {
          return v === null || (spec.logx && v <= 0) ? null : p0[0] + sx * (fx(v) - fx(a));
        },
        y: function (v) {
          return v === null || (spec.logy && v <= 0) ? null : p0[1] + sy * (fy(v) - fy(b));
        }
      };
    }
    function drawHovered(ln) {
      var ratio = window.devicePixelRatio || 1;
      var w = chartDiv.clientWidth, h = chartDiv.clientHeight;
      if (overlay.width !== Math.round(w * ratio) || overlay.height !== Math.round(h * ratio)) {
        overlay.width = Math.round(w * ratio);
        overlay.height = Math.round(h * ratio);
        overlay.style.width = w + 'px';
        overlay.style.height = h + 'px';
      }
      var ctx = overlay.getContext('2d'), g = grids[ln.p], maps = pixelMaps(ln.p);
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, w, h);
      ctx.save();
      ctx.beginPath();
      ctx.rect(parseFloat(g.left) / 100 * w, g.top, parseFloat(g.width) / 100 * w, g.height);
      ctx.clip();
      ctx.beginPath();
      var on = false;
      for (var k = 0; k < ln.x.length; k++) {
        var qx = maps.x(ln.x[k]), qy = maps.y(ln.y[k]);
        if (qx === null || qy === null) { on = false; continue; }
        if (on) ctx.lineTo(qx, qy); else ctx.moveTo(qx, qy);
        on = true;
      }
      ctx.strokeStyle = ln.color;
      ctx.lineWidth = Math.max(2.5, ln.width + 1.5);
      ctx.lineJoin = 'round';
      ctx.stroke();
      ctx.restore();
    }
    function nearest(px, py) {
      var panel = -1;
      for (var k = 0; k < spec.panels.length; k++) {
        if (chart.containPixel({ gridIndex: k }, [px, py])) { panel = k; break; }
      }
      if (panel < 0) return null;
      // Data to pixels by the panel's two linear maps, read off once, not one conversion
      // per point: thousands of runs stay quick.
      var maps = pixelMaps(panel), pxOf = maps.x, pyOf = maps.y;
      // Only the points and segments within 8 px of the pointer across can be near it:
      // found once per x vector (most runs share theirs), then checked per line.
      var reachMax = 8;
      spec.lines.forEach(function (ln) { reachMax = Math.max(reachMax, 3 + ln.width / 2); });
      var windows = new Map();
      function candidates(xs) {
        var found = windows.get(xs);
        if (found) return found;
        found = [];
        var prev = null;
        for (var i = 0; i < xs.length; i++) {
          var q = pxOf(xs[i]);
          if (q !== null && (Math.abs(q - px) <= reachMax || (prev !== null &&
              Math.min(prev, q) <= px + reachMax && Math.max(prev, q) >= px - reachMax))) {
            found.push(i);
          }
          prev = q;
        }
        windows.set(xs, found);
        return found;
      }
      // On a line (within its half width and 3 px) the topmost wins, as it is drawn on
      // top: the bold highlight over the thin runs under it; else the nearest in 8 px.
      var best = null, bestD = 64, onTop = null;
      spec.lines.forEach(function (ln, li) {
        if (ln.p !== panel || (ln.name !== null && hidden[ln.name])) return;
        var reach = Math.pow(3 + ln.width / 2, 2), near, found = candidates(ln.x);
        for (var c = 0; c < found.length; c++) {
          var i = found[c], qx = pxOf(ln.x[i]), qy = pyOf(ln.y[i]);
          if (qx === null || qy === null) continue;
          var rx = i > 0 ? pxOf(ln.x[i - 1]) : null, ry = i > 0 ? pyOf(ln.y[i - 1]) : null;
          var d;
          if (rx !== null && ry !== null) {
            var dx = qx - rx, dy = qy - ry, len = dx * dx + dy * dy;
            var t = len ? Math.max(0, Math.min(1, ((px - rx) * dx + (py - ry) * dy) / len)) : 0;
            var ex = rx + t * dx - px, ey = ry + t * dy - py;
            d = ex * ex + ey * ey;
            near = t < 0.5 ? i - 1 : i;
          } else {
            d = (qx - px) * (qx - px) + (qy - py) * (qy - py);
            near = i;
          }
          if (d <= reach && (!onTop || (ln.z || 2) > onTop.z ||
                             ((ln.z || 2) === onTop.z && d < onTop.d))) {
            onTop = { line: li, point: near, z: ln.z || 2, d: d };
          }
          if (d < bestD) { bestD = d; best = { line: li, point: near }; }
        }
      });
      if (onTop) return { line: onTop.line, point: onTop.point };
      return best;
    }
    function showHover(hit, px, py) {
      var ln = spec.lines[hit.line], i = hit.point;
      var pairs = [[spec.xName || 'x', ln.x[i]], [ln.valueName || 'value', ln.y[i]]];
      (ln.extra || []).forEach(function (ex) { pairs.push([ex[0], ex[1][i]]); });
      tip.textContent = '';
      tip.appendChild(el('b', null, ln.label));
      pairs.forEach(function (p) {
        tip.appendChild(document.createTextNode('\n' + p[0] + ': ' + fmt(p[1])));
      });
      tip.style.display = 'block';
      var w = chartDiv.clientWidth;
      tip.style.left = Math.min(px + 14, w - 220) + 'px';
      tip.style.top = (py + 14) + 'px';
      drawHovered(ln);
      view.hovered = ln.label;
    }
    var pending = null;
    chart.getZr().on('mousemove', function (e) {
      pending = [e.offsetX, e.offsetY];
      window.requestAnimationFrame(function () {
        if (!pending) return;
        var p = pending; pending = null;
        var hit = nearest(p[0], p[1]);
        if (hit) showHover(hit, p[0], p[1]); else if (view.hovered !== null) clearHover();
      });
    });
    chart.getZr().on('globalout', function () { if (view.hovered !== null) clearHover(); });
    var view = { kind: 'lines', chart: chart, spec: spec, hovered: null, tip: tip };
    window.addEventListener('resize', function () { chart.resize(); });
    return view;
  }

  // -- packed numbers (xpcli/html/pack.py) ------------------------------------------------

  var POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
    1e15];
  var MISSING = 4294967295;  // 2**32 - 1

  /* base64 text -> the bytes it deflated (the browser's own inflater; nothing fetched). */
  function inflate(text) {
    var bin = atob(text), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Response(stream).arrayBuffer().then(function (buf) { return new Uint8Array(buf); });
  }

  /* Bytes stored plane by plane (all first bytes, then all second ...) back into words. */
  function unplane(bytes, width) {
    var n = bytes.length / width, out = new Uint8Array(bytes.length);
    for (var b = 0; b < width; b++) {
      for (var i = 0, at = b * n; i < n; i++) out[i * width + b] = bytes[at + i];
    }
    return out.buffer;
  }

  /* The arrays of a packed spec: decimal integers (zigzag-coded differences) or floats. */
  function unpack(p) {
    return Promise.all([inflate(p.ints), inflate(p.floats)]).then(function (raw) {
      var ints = new Uint32Array(unplane(raw[0], 4));
      var floats = new Float64Array(unplane(raw[1], 8));
      var out = [], i = 0, f = 0;
      for (var k = 0; k < p.n.length; k++) {
        var n = p.n[k], d = p.d[k], row = new Array(n), j, v;
        if (d < 0) {
          for (j = 0; j < n; j++) { v = floats[f++]; row[j] = v !== v ? null : v; }
        } else {
          var acc = 0, scale = POW10[d];
          for (j = 0; j < n; j++) {
            v = ints[i++];
            if (v === MISSING) row[j] = null;
            else { acc += (v >>> 1) ^ -(v & 1); row[j] = acc / scale; }  // zigzag
          }
        }
        out.push(row);
      }
      return out;
    });
  }

  /* A line view's spec with its numbers in place of their indices. */
  function unpacked(spec) {
    if (!spec.packed) return Promise.resolve(spec);
    if (typeof DecompressionStream === 'undefined') {
      return Promise.reject(new Error('this browser cannot read the page\'s packed data ' +
        '(it needs DecompressionStream: Chrome 80, Firefox 113, Safari 16.4 or later)'));
    }
    return unpack(spec.packed).then(function (arrays) {
      spec.xs = spec.xs.map(function (i) { return arrays[i]; });
      // The lines travel as columns (a style and a label index each): back to objects.
      var cols = spec.lines, lines = new Array(cols.n), extra = {};
      var style = arrays[cols.columns.style], label = arrays[cols.columns.label];
      var xi = arrays[cols.columns.xi], y = arrays[cols.columns.y];
      cols.extra.forEach(function (e) {
        extra[e[0]] = e[1].map(function (ex) { return [ex[0], arrays[ex[1]]]; });
      });
      for (var i = 0; i < cols.n; i++) {
        var s = cols.styles[style[i]];
        lines[i] = { p: s.p, name: s.name, color: s.color, width: s.width,
          opacity: s.opacity, z: s.z, label: cols.labels[label[i]], xi: xi[i], y: arrays[y[i]] };
        if (extra[i]) lines[i].extra = extra[i];
      }
      spec.lines = lines;
      spec.bands.forEach(function (b) {
        b.x = arrays[b.x]; b.lo = arrays[b.lo]; b.hi = arrays[b.hi];
      });
      delete spec.packed;
      return spec;
    });
  }

  xp.init = function () {
    var started = performance.now();
    var sections = Array.prototype.slice.call(document.querySelectorAll('section.xp-view'));
    var specs = sections.map(function (root) {
      return unpacked(JSON.parse(document.getElementById(root.id + '-data').textContent));
    });
    Promise.all(specs).then(function (specs) {
      xp.decodedMs = performance.now();  // the data read and unpacked
      sections.forEach(function (root, k) {
        var kind = root.getAttribute('data-kind');
        var view = kind === 'parcoords' ? parcoords(root, specs[k]) : lines(root, specs[k]);
        view.root = root;
        xp.views.push(view);
      });
      xp.initMs = performance.now() - started;
      // Drawn: from navigation start (performance.now's origin) to every view drawn
      // (ECharts paints in setOption).
      xp.readyMs = performance.now();
      xp.ready = true;
    }).catch(function (e) {
      xp.error = String(e && e.message || e);
      sections.forEach(function (root) {
        root.appendChild(el('div', 'xp-error', 'Cannot draw this view: ' + xp.error));
      });
    });
  };
})();
