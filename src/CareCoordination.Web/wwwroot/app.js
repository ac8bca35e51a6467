// Shows an NHS number 3-3-4 as it is typed, the way NHS letters print it. In the browser, so typing never
// waits on the server; the server formats it again when the field is left, and normalises whatever arrives.
document.addEventListener('input', event => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.dataset.format !== 'nhs-number') {
        return;
    }
    const digits = input.value.replace(/\D/g, '').slice(0, 10);
    const formatted = [digits.slice(0, 3), digits.slice(3, 6), digits.slice(6)].filter(part => part.length > 0).join(' ');
    if (formatted !== input.value) {
        const atEnd = input.selectionStart === input.value.length;
        input.value = formatted;
        if (atEnd) {
            input.setSelectionRange(formatted.length, formatted.length);
        }
    }
});

// ---- Downtime mode (docs/downtime.md). Everything here runs in the browser alone, so it works with the server down. ----

const londonTime = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const londonDateTime = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Europe/London', weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});
const keptTextKey = 'cc-kept-text:';
let offlineSince = null;
// What a person typed into a form, by field, and what of it the server has not had because the connection was down.
const typed = new Map();
const typedOffline = new Set();

function fieldKey(element) {
    return element.id || element.name || null;
}

function keepable(element) {
    if (!(element instanceof HTMLInputElement || element instanceof HTMLTextAreaElement || element instanceof HTMLSelectElement)) {
        return false;
    }
    if (element instanceof HTMLInputElement && ['password', 'hidden', 'file', 'submit', 'button'].includes(element.type)) {
        return false;
    }
    return element.closest('form') !== null && fieldKey(element) !== null;
}

for (const kind of ['input', 'change']) {
    document.addEventListener(kind, event => {
        const element = event.target;
        if (!event.isTrusted || !keepable(element)) {
            return;
        }
        typed.set(fieldKey(element), element);
        if (offlineSince !== null) {
            typedOffline.add(fieldKey(element));
        }
    }, true);
}

function valueOf(element) {
    return element instanceof HTMLInputElement && (element.type === 'checkbox' || element.type === 'radio') ? { checked: element.checked } : { value: element.value };
}

// A field emptied since (a form sent and cleared for the next) has nothing to keep.
function holdsSomething(kept) {
    return 'checked' in kept ? kept.checked : kept.value !== '';
}

// Hands a field's value to the live page as if it had just been typed, so the server's copy of the form has it.
function replay(element, kept) {
    if ('checked' in kept) {
        element.checked = kept.checked;
    } else {
        element.value = kept.value;
    }
    element.dispatchEvent(new Event('input', { bubbles: true }));
    element.dispatchEvent(new Event('change', { bubbles: true }));
}

function tell(message) {
    document.querySelector('[data-testid="kept-text"]')?.remove();
    const note = document.createElement('div');
    note.className = 'cc-kept-text';
    note.setAttribute('role', 'alert');
    note.dataset.testid = 'kept-text';
    note.textContent = message;
    (document.querySelector('main') ?? document.body).prepend(note);
}

function goOffline() {
    if (offlineSince !== null) {
        return;
    }
    offlineSince = new Date();
    document.body.classList.add('cc-is-offline');
    for (const span of document.querySelectorAll('[data-offline-since]')) {
        span.textContent = londonTime.format(offlineSince);
    }
}

function backOnline() {
    if (offlineSince === null) {
        return;
    }
    offlineSince = null;
    document.body.classList.remove('cc-is-offline');
    // Same circuit: what was typed while it was down never reached the server; hand it over now.
    const replayed = [...typedOffline].map(key => typed.get(key)).filter(element => element?.isConnected);
    typedOffline.clear();
    for (const element of replayed) {
        replay(element, valueOf(element));
    }
    if (replayed.length > 0) {
        tell('The connection is back. What you typed while it was down is kept in the form. Nothing was sent while it was down: send it now.');
    }
}

// The circuit is gone (the server restarted): only a fresh page is current. What was typed into its forms is kept for
// this tab and put back once the fresh page is live, so nothing typed is lost.
function reloadKeepingText() {
    const kept = [...typed.values()].filter(element => element.isConnected).map(element => ({ key: fieldKey(element), ...valueOf(element) })).filter(holdsSomething);
    if (kept.length > 0) {
        sessionStorage.setItem(keptTextKey + location.pathname + location.search, JSON.stringify({ at: Date.now(), fields: kept }));
    }
    location.reload();
}

function restoreKeptText() {
    const key = keptTextKey + location.pathname + location.search;
    const stored = sessionStorage.getItem(key);
    if (stored === null) {
        return;
    }
    const { at, fields } = JSON.parse(stored);
    if (Date.now() - at > 24 * 60 * 60 * 1000) {
        sessionStorage.removeItem(key);
        return;
    }
    // The form is drawn only once the page is live (and may load a draft first): wait for its fields.
    const started = Date.now();
    const timer = setInterval(() => {
        const live = document.querySelector('[data-circuit="live"]') !== null;
        const elements = fields.map(field => [document.getElementById(field.key) ?? document.getElementsByName(field.key)[0], field]);
        if (live && elements.some(([element]) => element)) {
            clearInterval(timer);
            sessionStorage.removeItem(key);
            for (const [element, field] of elements.filter(([element]) => element)) {
                replay(element, field);
                typed.set(field.key, element);
            }
            tell('The connection was lost before this form was sent. What you typed is back in the form, but it has NOT been sent: '
                + 'check it (choices from lists may need choosing again) and send it.');
        } else if (Date.now() - started > 60_000) {
            clearInterval(timer);
        }
    }, 250);
}

function csvCell(text) {
    let cell = (text ?? '').replace(/\s+/g, ' ').trim();
    // A spreadsheet runs a cell starting with = + - @ as a formula (OWASP, CSV injection): keep it text.
    if (/^[=+\-@]/.test(cell)) {
        cell = "'" + cell;
    }
    return /[",\r\n]/.test(cell) ? '"' + cell.replace(/"/g, '""') + '"' : cell;
}

function cellText(cell) {
    return [...cell.childNodes].map(node => node.textContent).join(' ');
}

// What the page shows, as CSV: when it is as of, then its counts, tiles, tables and beds, each under a heading row.
function pageCsv(bar) {
    const main = bar.closest('main') ?? document.body;
    const rows = [
        ['Page', bar.dataset.csvName ?? document.title],
        ['As of change', bar.dataset.asOfSeq ?? ''],
        ['As of', bar.dataset.asOf ?? ''],
        ['Offline since', offlineSince === null ? bar.querySelector('[data-store-down-since]')?.dataset.storeDownSince ?? '' : londonTime.format(offlineSince)],
        ['Downloaded', londonDateTime.format(new Date())],
    ];
    const counts = [...main.querySelectorAll('.cc-count')];
    if (counts.length > 0) {
        rows.push([], ['Counts'], ['Figure', 'Count']);
        for (const count of counts) {
            const figure = count.querySelector('strong');
            rows.push([count.textContent.replace(figure?.textContent ?? '', ''), figure?.textContent ?? '']);
        }
    }
    const tiles = [...main.querySelectorAll('.cc-tile-big')];
    if (tiles.length > 0) {
        rows.push([], ['Tiles'], ['Figure', 'Value', 'Detail']);
        for (const tile of tiles) {
            rows.push([tile.querySelector('.cc-tile-label')?.textContent, tile.querySelector('strong')?.textContent, tile.querySelector('span:last-child')?.textContent]);
        }
    }
    for (const table of main.querySelectorAll('table')) {
        const title = table.querySelector('caption')?.textContent || table.getAttribute('aria-label') || table.dataset.testid || 'Table';
        rows.push([], [title]);
        for (const tr of table.querySelectorAll('tr')) {
            rows.push([...tr.querySelectorAll('th, td')].map(cellText));
        }
    }
    const beds = [...main.querySelectorAll('[data-testid="bed"]')];
    if (beds.length > 0) {
        rows.push([], ['Beds'], ['Site', 'Ward', 'Bed', 'Status', 'Stale', 'Detail']);
        for (const bed of beds) {
            const site = bed.closest('[data-testid="site"]')?.getAttribute('aria-label') ?? '';
            const ward = bed.closest('.cc-ward')?.querySelector('.cc-ward-name')?.firstChild?.textContent ?? '';
            rows.push([site, ward, bed.textContent, bed.dataset.status, bed.classList.contains('cc-bed-stale') ? 'stale' : '', bed.title]);
        }
    }
    return rows.map(row => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

function downloadCsv(bar) {
    const name = (bar.dataset.csvName ?? 'page').toLowerCase().replace(/[^a-z0-9]+/g, '-');
    const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob(['\ufeff' + pageCsv(bar)], { type: 'text/csv;charset=utf-8' }));
    link.download = `${name}-${stamp}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// Plain buttons, not Blazor ones: they must work with no connection.
document.addEventListener('click', event => {
    const button = event.target instanceof Element ? event.target.closest('[data-downtime]') : null;
    if (button === null) {
        return;
    }
    if (button.dataset.downtime === 'print') {
        for (const span of document.querySelectorAll('[data-printed-at]')) {
            span.textContent = londonDateTime.format(new Date());
        }
        window.print();
    } else if (button.dataset.downtime === 'csv') {
        downloadCsv(button.closest('[data-testid="downtime"]'));
    }
});

document.addEventListener('DOMContentLoaded', () => {
    document.getElementById('components-reconnect-modal')?.addEventListener('components-reconnect-state-changed', event => {
        switch (event.detail?.state) {
            case 'show':
            case 'retrying':
            case 'failed':
            case 'paused':
                goOffline();
                break;
            case 'hide':
                backOnline();
                break;
            case 'rejected':
            case 'resume-failed':
                reloadKeepingText();
                break;
        }
    });
    // Started here rather than by itself so that the reconnection can be set, and after every script on the page has
    // run (Radzen's among them). Downtime lasts longer than Blazor's default retries (about six minutes): keep trying,
    // every 15 s after the first minute, so an open page comes back by itself when the server does.
    Blazor.start({
        circuit: {
            reconnectionOptions: {
                maxRetries: Number.MAX_SAFE_INTEGER,
                retryIntervalMilliseconds: attempt => attempt < 10 ? 1000 : attempt < 20 ? 5000 : 15000,
            },
        },
    });
    restoreKeptText();
});
