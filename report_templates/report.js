"use strict";
/* The page's words for what the script says, from the body's data-words (none in English: the
   script's own), each `{name}` filled in. */
var say = (function () {
  var words = {};
  try { words = JSON.parse(document.body.getAttribute("data-words") || "{}"); } catch (error) {
    words = {};
  }
  return function (text, values) {
    return (words[text] || text).replace(/\{(\w+)\}/g, function (field, name) {
      return values && name in values ? values[name] : field;
    });
  };
})();

/* Sorting, filtering and paging of the report's tables. Without it every row simply shows. */
(function () {
  var PAGE = 50;
  var SETTLE_MS = 700;
  var LOCALE = document.documentElement.lang === "zh-CN" ? "zh-CN" : "en-US";

  function button(text, label) {
    var element = document.createElement("button");
    element.type = "button";
    element.textContent = text;
    if (label) element.setAttribute("aria-label", label);
    return element;
  }

  function sortValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var given = cell.getAttribute("data-sort");
    return given !== null ? given : cell.textContent.trim();
  }

  var DIGITS = /^\d+$/;

  function compare(a, b) {
    // digit strings (message IDs of 18 digits and more) exactly: a double holds only 15 or 16
    if (DIGITS.test(a) && DIGITS.test(b)) {
      a = a.replace(/^0+(?=\d)/, "");
      b = b.replace(/^0+(?=\d)/, "");
      if (a.length !== b.length) return a.length - b.length;
      return a < b ? -1 : a > b ? 1 : 0;
    }
    var x = Number(a), y = Number(b);
    if (a !== "" && b !== "" && !isNaN(x) && !isNaN(y)) return x - y;
    return a.localeCompare(b);
  }

  function count(value) {
    return Number(value).toLocaleString(LOCALE);
  }

  function setup(table) {
    var body = table.tBodies[0];
    var order = Array.prototype.slice.call(body.rows);
    var text = new Map(order.map(function (row) {
      return [row, row.textContent.toLowerCase()];
    }));
    var state = { page: 0, matches: order, needle: "" };

    var controls = document.createElement("div");
    controls.className = "controls";
    // five tables each have a Previous and a Next: the group says whose they are
    controls.setAttribute("role", "group");
    var title = table.caption ? table.caption.textContent : say("this table");
    controls.setAttribute("aria-label", say("Rows of {title}", { title: title }));
    // a table the page cut holds only its most severe rows: its filter searches only those
    var total = Number(table.getAttribute("data-total") || order.length);
    var cut = total > order.length;
    var shown = { shown: count(order.length), total: count(total) };
    var scope = cut ? say("the {shown} rows shown (of {total})", shown) : say("the rows of this table");
    var filter = document.createElement("input");
    filter.type = "search";
    filter.placeholder = cut ? say("Filter the {shown} rows shown", shown) : say("Filter rows");
    filter.setAttribute("aria-label", say("Filter {scope}", { scope: scope }));
    filter.title = cut
      ? say("Searches only {scope}; findings.csv and findings.jsonl hold all {total}",
        { scope: scope, total: count(total) })
      : say("Filter {scope}", { scope: scope });
    var previous = button(say("\u2039 Previous"), say("Previous page"));
    var next = button(say("Next \u203a"), say("Next page"));
    var status = document.createElement("span");
    status.className = "status";
    status.setAttribute("role", "status");  // polite: says each sort, filter and page
    controls.append(filter, previous, status, next);
    table.parentNode.insertBefore(controls, table);

    var pending = 0;  // the status line waiting for the typing to stop

    function show(sorted, typing) {
      var pages = Math.max(1, Math.ceil(state.matches.length / PAGE));
      state.page = Math.max(0, Math.min(state.page, pages - 1));
      var first = state.page * PAGE;
      var last = Math.min(first + PAGE, state.matches.length);
      order.forEach(function (row) { row.hidden = true; });
      for (var i = first; i < last; i++) state.matches[i].hidden = false;
      var among = cut && state.needle ? say(" (searched only the {shown} rows shown of {total}; " +
        "findings.csv and findings.jsonl hold all)", shown) : "";
      var said = (state.matches.length
        ? say("rows {first}\u2013{last} of {count}",
          { first: count(first + 1), last: count(last), count: count(state.matches.length) }) +
          among
        : say("no matching rows") + among) + (sorted || "");
      // the rows follow each key at once; the status line, which a screen reader speaks, waits
      // for a pause in the typing so that "kickback" is one announcement, not eight
      clearTimeout(pending);
      if (typing) pending = setTimeout(function () { status.textContent = said; }, SETTLE_MS);
      else status.textContent = said;
      previous.disabled = state.page === 0;
      next.disabled = state.page >= pages - 1;
    }

    function refilter() {
      state.matches = order.filter(function (row) {
        return !state.needle || text.get(row).indexOf(state.needle) >= 0;
      });
    }

    filter.addEventListener("input", function () {
      state.needle = filter.value.trim().toLowerCase();
      state.page = 0;
      refilter();
      show(undefined, true);
    });
    previous.addEventListener("click", function () { state.page -= 1; show(); });
    next.addEventListener("click", function () { state.page += 1; show(); });

    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      // named by its column alone: the heading's name is read out with every cell below it;
      // aria-sort on the heading and the status line say how the rows are sorted
      var name = header.textContent;
      var sorter = button(name);
      sorter.className = "sort";
      header.setAttribute("data-label", header.textContent);  // printed: Chromium leaves a
      header.textContent = "";  // button blank in the heading it repeats on each page
      header.appendChild(sorter);
      sorter.addEventListener("click", function () {
        var descending = header.getAttribute("aria-sort") === "ascending";
        Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) {
          other.removeAttribute("aria-sort");
        });
        header.setAttribute("aria-sort", descending ? "descending" : "ascending");
        order = order
          .map(function (row, position) { return [sortValue(row, index), position, row]; })
          .sort(function (a, b) {
            var result = compare(a[0], b[0]);
            return (descending ? -result : result) || a[1] - b[1];
          })
          .map(function (entry) { return entry[2]; });
        order.forEach(function (row) { body.appendChild(row); });
        state.page = 0;
        refilter();
        show(say(descending ? ", sorted by {name}, descending" : ", sorted by {name}, ascending",
          { name: name }));
      });
    });
    show();
  }

  document.querySelectorAll("table.data").forEach(setup);
  document.documentElement.classList.add("scripted");
})();

/* A box that scrolls (a wide table or chart at 320 px, a long record opened in its row) takes the
   focus while it scrolls, named by what it holds, or a keyboard user could not scroll it
   (WCAG 2.1.1). Only while it scrolls: at full width most boxes fit and cost no Tab stop. */
(function () {
  if (typeof ResizeObserver !== "function") return;

  function nameOf(box) {
    var table = box.querySelector("table");
    if (table && table.caption) return table.caption.textContent.trim();
    var figure = box.closest("figure");
    var title = figure && figure.querySelector("figcaption");
    if (title) return title.textContent.trim();
    var row = box.closest("tr");
    var id = row && row.querySelector("td.id");
    var summary = box.closest("details") && box.closest("details").querySelector("summary");
    var msg = id ? id.textContent.trim() : "";
    var what = summary && summary.textContent.trim();
    if (summary) return msg ? say("{what} of message {id}", { what: what, id: msg }) : what;
    var section = box.closest("section");
    var heading = section && section.querySelector("h2, h3");
    return heading ? heading.textContent.trim() : say("scrolling text");
  }

  function mark(box) {
    var scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
    if (scrolls === box.hasAttribute("tabindex")) return;
    if (scrolls) {
      box.tabIndex = 0;
      box.setAttribute("role", "group");  // not a region: a landmark for each would swamp the list
      box.setAttribute("aria-label", nameOf(box));
    } else {
      box.removeAttribute("tabindex");
      box.removeAttribute("role");
      box.removeAttribute("aria-label");
    }
  }

  var boxes = new Map();  // what is watched (the box, and the table or chart in it) -> the box
  var watcher = new ResizeObserver(function (entries) {
    entries.forEach(function (entry) { mark(boxes.get(entry.target)); });
  });

  function watch(box) {
    if (boxes.has(box)) return;
    [box, box.querySelector(":scope > table, :scope > svg")].forEach(function (part) {
      if (part) { boxes.set(part, box); watcher.observe(part); }
    });
  }

  document.querySelectorAll(".scroll, pre").forEach(function (box) {
    if (!box.closest("details:not([open])")) watch(box);
  });
  // a record's box is watched once its row is opened: a table may hold thousands, closed
  document.addEventListener("toggle", function (event) {
    if (event.target.open) event.target.querySelectorAll(".scroll, pre").forEach(watch);
  }, true);
})();
