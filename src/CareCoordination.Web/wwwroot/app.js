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

// The circuit is gone for good (the server restarted, or it was away too long): a fresh page is the only current one.
document.addEventListener('DOMContentLoaded', () => {
    document.getElementById('components-reconnect-modal')?.addEventListener('components-reconnect-state-changed', event => {
        if (event.detail?.state === 'rejected') {
            location.reload();
        }
    });
});
