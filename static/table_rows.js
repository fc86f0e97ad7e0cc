// Tables in forms (planner/table_fields.py): "Add row" copies the last row with empty cells
// and the next row number in every input's name (<field>-<row>-<column>).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-table-add]");
    if (!button) return;
    var body = button.parentElement.querySelector("tbody");
    var last = body.lastElementChild;
    var row = last.cloneNode(true);
    var index = body.children.length;
    row.classList.remove("row-error");
    row.querySelectorAll("input, select").forEach(function (cell) {
      cell.name = cell.name.replace(/-\d+-([^-]+)$/, "-" + index + "-$1");
      var label = cell.getAttribute("aria-label") || "";
      cell.setAttribute("aria-label", label.replace(/row \d+$/, "row " + (index + 1)));
      cell.value = "";
    });
    var note = row.lastElementChild;
    note.textContent = "";
    note.className = "";
    note.removeAttribute("role");
    body.appendChild(row);
    var first = row.querySelector("input, select");
    if (first) first.focus();
  });
})();
