// feedsvc pages: search the directory as you type, copy feed addresses. The pages work
// without this script: the full list is there and every address is a plain link.
(function () {
  "use strict";

  function rowsOf(node) {
    return node.querySelectorAll(":scope > ul.rows > li.row, :scope > details > ul.rows > li.row");
  }

  // Shows the rows matching the query, the rows above them, and (collapsed) the rows under a
  // matching one; opens the lists that hold a match. Returns whether the row or a row under
  // it matches.
  function filter(row, query, ancestorMatches) {
    var own = !query || row.dataset.names.indexOf(query) !== -1;
    var below = false;
    rowsOf(row).forEach(function (child) {
      if (filter(child, query, ancestorMatches || own)) { below = true; }
    });
    row.hidden = !(own || below || ancestorMatches);
    var details = row.querySelector(":scope > details");
    if (details) { details.open = Boolean(query) && below; }
    return own || below;
  }

  function setUpSearch() {
    var form = document.querySelector("form.search");
    if (!form) { return; }
    var input = form.querySelector("input");
    var none = document.getElementById("no-match");
    var sections = document.querySelectorAll("main > section");
    form.hidden = false;
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    input.addEventListener("input", function () {
      var query = input.value.trim().toLocaleLowerCase();
      var any = false;
      sections.forEach(function (section) {
        var found = false;
        section.querySelectorAll(":scope > ul.rows > li.row").forEach(function (row) {
          if (filter(row, query, false)) { found = true; }
        });
        if (section.querySelector(":scope > ul.rows")) { section.hidden = !found; }
        any = any || found;
      });
      if (none) { none.hidden = any || !query; }
    });
  }

  function setUpCopy() {
    if (!navigator.clipboard) { return; }
    document.querySelectorAll("button.copy").forEach(function (button) {
      var label = button.textContent;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(button.dataset.copy).then(function () {
          button.textContent = document.documentElement.dataset.copied || "✓";
          button.classList.add("done");
          setTimeout(function () {
            button.textContent = label;
            button.classList.remove("done");
          }, 2000);
        });
      });
    });
  }

  setUpSearch();
  setUpCopy();
}());
