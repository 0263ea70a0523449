// fedgate dashboard page: plain browser JavaScript, no build step. It reads the snapshot and the updates
// that `fedgate dashboard` pushes as server-sent events (cli/dashboard/dashboard-server.ts) and renders
// them; every request carries the per-run token. Text from the federation (site ids, reasons, messages)
// is only ever set as textContent, never as HTML.
'use strict';

(function () {
  const token = document.querySelector('meta[name="fedgate-token"]').content;
  const STAGES = ['advertise_keys', 'nonce_reveal', 'share_keys', 'masked_input', 'consistency_check', 'unmask', 'commit'];
  const STAGE_COLOURS = ['#5dade2', '#48c9b0', '#f4d03f', '#eb984e', '#af7ac5', '#ec7063', '#58d68d'];
  const state = { rounds: new Map(), participants: [], ledger: { height: 0 }, status: undefined, connection: undefined };
  let streamLost = false;

  const byId = (id) => document.getElementById(id);
  const text = (id, value) => {
    byId(id).textContent = value;
  };
  const when = (ms) => (ms ? new Date(ms).toLocaleString() : '-');
  const short = (hash) => (hash ? hash.slice(0, 16) + '...' : '-');
  const number = (value, digits) => (typeof value === 'number' ? value.toFixed(digits) : '-');

  function lineChart(canvas, label, colour, scale) {
    return new Chart(canvas, {
      type: 'line',
      data: { labels: [], datasets: [{ label, data: [], borderColor: colour, backgroundColor: colour, tension: 0, pointRadius: 3 }] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { x: { title: { display: true, text: 'round' } }, y: scale },
      },
    });
  }
  const lossChart = lineChart(byId('loss-chart'), 'federated loss', '#c0392b', { beginAtZero: true });
  const accuracyChart = lineChart(byId('accuracy-chart'), 'federated accuracy', '#2471a3', { min: 0, max: 1 });

  function cell(row, value, className) {
    const td = document.createElement('td');
    if (value instanceof Node) td.appendChild(value);
    else td.textContent = value;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function badge(label, kind) {
    const span = document.createElement('span');
    span.className = 'badge ' + kind;
    span.textContent = label;
    return span;
  }

  function stageBar(round) {
    const bar = document.createElement('span');
    bar.className = 'stagebar';
    const total = STAGES.reduce((sum, stage) => sum + (round.stageSeconds[stage] || 0), 0);
    if (total === 0) return document.createTextNode(round.outcome === 'open' ? 'running' : 'not seen live');
    STAGES.forEach((stage, index) => {
      const seconds = round.stageSeconds[stage];
      if (!seconds) return;
      const part = document.createElement('span');
      part.style.width = (100 * seconds) / total + '%';
      part.style.background = STAGE_COLOURS[index];
      part.title = stage + ': ' + seconds.toFixed(3) + ' s';
      part.dataset.stage = stage;
      bar.appendChild(part);
    });
    return bar;
  }

  function renderConnection() {
    const element = byId('connection');
    // Anything but a live feed leaves the figures as last seen: say so by greying them.
    document.body.classList.toggle('stale', streamLost || !state.connection || state.connection.state !== 'live');
    if (streamLost) {
      element.className = 'connection lost';
      element.textContent = 'lost the connection to fedgate dashboard (is the command still running?); retrying';
      return;
    }
    const connection = state.connection;
    if (!connection) return;
    element.className = 'connection ' + connection.state;
    element.dataset.state = connection.state;
    element.textContent = connection.message;
  }

  function renderSummary() {
    const status = state.status;
    if (status) {
      text('federation', status.federationId);
      text('rounds-committed', status.committedRounds + ' of ' + status.roundsConfigured + ' committed');
      text('open-round', status.openRoundCounter === undefined ? 'no round open' : 'round counter ' + status.openRoundCounter + ' open');
      text('participants-connected', status.connectedParticipants + ' connected (rounds need ' + status.minParticipants + ')');
      text('revoked-count', status.revokedCertificates + ' certificate(s) revoked');
      text('aggregation', status.secureAggregation ? 'secure (SecAgg+)' : 'PLAINTEXT');
      text('model', 'model ' + short(status.currentModelHash));
    }
    const ledger = state.ledger;
    text('ledger-height', String(ledger.height));
    text('ledger-head', ledger.headHash || '-');
    const check = ledger.verification;
    const verification = byId('ledger-verification');
    verification.textContent = check ? (check.ok ? 'ok' : 'FAILED') + ' at ' + when(check.checkedAtUnixMs) + ': ' + check.detail : '-';
    verification.dataset.ok = check ? String(check.ok) : '';
  }

  function committedRounds() {
    return [...state.rounds.values()].filter((round) => round.outcome === 'committed' && round.sequence !== undefined).sort((a, b) => a.sequence - b.sequence);
  }

  function renderCharts() {
    const evaluated = committedRounds().filter((round) => typeof round.evalLoss === 'number');
    const labels = evaluated.map((round) => round.sequence);
    lossChart.data.labels = labels;
    lossChart.data.datasets[0].data = evaluated.map((round) => round.evalLoss);
    // The figure that fits the task's loss: accuracy, micro-F1 (multi-label) or R^2 (regression, may be negative).
    const name = figureName(evaluated);
    text('evaluation-caption', 'Federated evaluation ' + name + ' per round');
    text('evaluation-header', name);
    accuracyChart.data.datasets[0].label = 'federated ' + name;
    accuracyChart.options.scales.y = name === 'R^2' ? { suggestedMax: 1 } : { min: 0, max: 1 };
    accuracyChart.data.labels = labels;
    accuracyChart.data.datasets[0].data = evaluated.map((round) => (round.evalFigure ? round.evalFigure.value : null));
    lossChart.update('none');
    accuracyChart.update('none');
  }

  function figureName(rounds) {
    const last = rounds.filter((round) => round.evalFigure).at(-1);
    return last ? last.evalFigure.name : 'accuracy';
  }

  function figureText(figure) {
    if (!figure) return '-';
    return figure.name === 'R^2' ? figure.value.toFixed(4) : (100 * figure.value).toFixed(1) + '%';
  }

  function renderRounds() {
    const body = byId('rounds').tBodies[0];
    const rows = [...state.rounds.values()].sort((a, b) => b.counter - a.counter).map((round) => {
      const row = document.createElement('tr');
      row.dataset.key = round.key;
      row.dataset.outcome = round.outcome;
      if (round.sequence !== undefined) row.dataset.sequence = String(round.sequence);
      cell(row, round.sequence === undefined ? '' : String(round.sequence));
      cell(row, String(round.counter));
      cell(row, round.outcome === 'aborted' ? 'aborted: ' + (round.abortReason || '?') : round.outcome);
      cell(row, round.participants.length + ' / ' + (round.outcome === 'committed' ? round.survivors.length : '-')).title = round.participants.join(', ');
      cell(row, stageBar(round));
      cell(row, number(round.seconds, 2));
      cell(row, number(round.evalLoss, 4), 'loss');
      cell(row, figureText(round.evalFigure), 'accuracy');
      cell(row, when(round.endedAtUnixMs));
      if (round.outcome === 'committed' && round.sequence !== undefined) {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'export';
        button.dataset.round = String(round.sequence);
        button.textContent = 'export ONNX';
        button.title = 'onnx sha256 ' + (round.onnxSha256 || 'not known yet');
        button.addEventListener('click', () => exportModel(round.sequence));
        cell(row, button);
      } else {
        cell(row, '');
      }
      return row;
    });
    body.replaceChildren(...rows);
    const latest = committedRounds().pop();
    const exportLatest = byId('export-latest');
    exportLatest.disabled = latest === undefined;
    exportLatest.dataset.round = latest === undefined ? '' : String(latest.sequence);
  }

  function renderParticipants() {
    const body = byId('participants').tBodies[0];
    body.replaceChildren(
      ...state.participants.map((site) => {
        const row = document.createElement('tr');
        row.dataset.site = site.siteId;
        cell(row, site.siteId);
        cell(row, site.connected ? badge('connected since ' + when(site.connectedAtUnixMs), 'yes') : badge('no', 'no'));
        cell(row, when(site.lastSeenUnixMs));
        cell(row, String(site.roundsJoined));
        cell(row, String(site.roundsContributed));
        cell(row, site.revoked ? badge('REVOKED ' + site.serial, 'revoked') : site.serial ? 'valid to ' + when(site.certificateNotAfterUnixMs) : '-');
        cell(row, site.device || '-');
        return row;
      }),
    );
  }

  function render() {
    renderConnection();
    renderSummary();
    renderCharts();
    renderRounds();
    renderParticipants();
  }

  function apply(update) {
    for (const round of update.rounds || []) state.rounds.set(round.key, round);
    if (update.participants) state.participants = update.participants;
    if (update.ledger) state.ledger = update.ledger;
    if (update.status) state.status = update.status;
    if (update.connection) state.connection = update.connection;
    render();
  }

  async function exportModel(round) {
    const status = byId('export-status');
    status.textContent = 'exporting round ' + round + '...';
    try {
      const response = await fetch('/api/export?round=' + encodeURIComponent(round), { headers: { 'X-Fedgate-Token': token } });
      if (!response.ok) throw new Error(await response.text());
      const blob = await response.blob();
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = (state.status ? state.status.federationId : 'fedgate') + '-round-' + round + '.onnx';
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
      status.textContent = 'round ' + round + ' exported (sha256 ' + response.headers.get('X-Fedgate-Onnx-Sha256') + ')';
    } catch (error) {
      status.textContent = 'export failed: ' + error.message;
    }
  }

  byId('stage-legend').replaceChildren(
    ...STAGES.map((stage, index) => {
      const entry = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = STAGE_COLOURS[index];
      entry.append(swatch, stage);
      return entry;
    }),
  );
  byId('export-latest').addEventListener('click', (event) => exportModel(Number(event.target.dataset.round)));

  const events = new EventSource('/api/events?token=' + encodeURIComponent(token));
  events.addEventListener('snapshot', (event) => {
    streamLost = false;
    state.rounds = new Map();
    apply(JSON.parse(event.data));
  });
  events.addEventListener('update', (event) => apply(JSON.parse(event.data)));
  events.addEventListener('error', () => {
    streamLost = true;
    renderConnection();
  });
})();
