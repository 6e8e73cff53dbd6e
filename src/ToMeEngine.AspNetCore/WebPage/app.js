'use strict';
// The page of `tome serve`: sends the chosen image to POST /inspect?r=N and shows what comes back. One request is in
// flight at a time; moving the slider meanwhile sends the latest r when it returns.
const $ = id => document.getElementById(id);
let image = null;          // the chosen file (a Blob)
let busy = false, pending = false;

async function describe() {
  const info = await (await fetch('inspect')).json();
  $('model').textContent = `${info.model}: ${info.description}, ${info.patches} patches of a ${info.imageSize}px crop`;
  const slider = $('r');
  slider.max = info.maxR;
  slider.value = Math.min(8, info.maxR);
  $('r-value').textContent = slider.value;
}

function choose(file) {
  if (!file) return;
  image = file;
  const original = $('original');
  original.src = URL.createObjectURL(file);
  original.hidden = false;
  $('r').disabled = false;
  inspect();
}

async function inspect() {
  if (!image) return;
  if (busy) { pending = true; return; }
  busy = true; pending = false;
  const r = $('r').value;
  try {
    const response = await fetch(`inspect?r=${r}`, { method: 'POST', body: image });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || body.title || response.statusText);
    show(body);
  } catch (e) {
    $('error').textContent = e.message;
    $('error').hidden = false;
  } finally {
    busy = false;
    if (pending) inspect();
  }
}

function show(result) {
  $('error').hidden = true;
  $('tokens').textContent = `${result.finalTokens} of ${result.tokensPerLayer[0]}`;
  $('groups').textContent = `${result.patchGroups} (from ${result.patches} patches)`;
  $('time').textContent = `${result.forwardMs.toFixed(1)} ms`;
  $('per-layer').textContent = [...result.tokensPerLayer, result.finalTokens].join(' → ');
  const picture = $('visualization');
  picture.src = result.visualization;
  picture.hidden = false;
  picture.dataset.r = result.r;
  const list = $('top5');
  list.replaceChildren(...result.predictions.map(p => {
    const item = document.createElement('li');
    item.textContent = `${p.label} — ${(100 * p.probability).toFixed(1)} %`;
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${Math.max(1, 100 * p.probability)}%`;
    item.append(bar);
    return item;
  }));
}

const drop = $('drop');
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => { e.preventDefault(); drop.classList.remove('over'); choose(e.dataTransfer.files[0]); });
$('file').addEventListener('change', e => choose(e.target.files[0]));
$('r').addEventListener('input', e => { $('r-value').textContent = e.target.value; inspect(); });
describe().catch(e => { $('error').textContent = `the server did not describe its model: ${e.message}`; $('error').hidden = false; });
