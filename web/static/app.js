// veille workbench: small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Rules editor: put the cursor on the line the validator complained about.
  function selectLine(area, line) {
    const lines = area.value.split("\n");
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    const end = start + (lines[line - 1] || "").length;
    area.focus();
    area.setSelectionRange(start, end);
    const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (line - 4) * lineHeight);
  }
  document.addEventListener("DOMContentLoaded", function () {
    const area = document.getElementById("rules-text");
    if (!area) return;
    const bad = parseInt(area.dataset.errorLine || "0", 10);
    if (bad > 0) selectLine(area, bad);
    // A preview is only valid for the text it was made from: once edited, saving needs a new preview.
    const save = document.getElementById("save");
    const original = area.value;
    if (save) {
      area.addEventListener("input", function () {
        const stale = area.value !== original;
        save.disabled = stale;
        const note = document.getElementById("stale");
        if (note) note.hidden = !stale;
      });
    }
  });
})();
