"""mkdocs hook: the search box works when the site is opened from disk (file://), not only when served.

Browsers refuse a Web Worker and an XMLHttpRequest on file:// pages ("SecurityError: Failed to construct
'Worker'"), which is how mkdocs's search loads its index. After the build this hook writes the index a second time
as a script (``search/search_index.js``) and gives ``search/main.js`` a file:// branch that loads lunr and that
script with ``<script>`` tags and searches in the page's own thread. Served pages keep the Worker.
"""

from __future__ import annotations

import json
from pathlib import Path

# the end of mkdocs's search/main.js (mkdocs 1.6) that starts the Worker; replaced by a branch for file://
_ORIGINAL = "if (!window.Worker) {\n  console.log('Web Worker API not supported');"
_FILE_BRANCH = """if (window.location.protocol === 'file:') {
  // file://: no Worker, no XMLHttpRequest; the index comes as a script and lunr runs in this thread
  (function () {
    var scripts = ['search/lunr.js', 'search/search_index.js'];
    function ready () {
      var data = window.linlensSearchData, documents = {};
      if (data.config && data.config.separator && data.config.separator.length) {
        lunr.tokenizer.separator = new RegExp(data.config.separator);
      }
      var index = lunr(function () {
        this.field('title');
        this.field('text');
        this.ref('location');
        for (var i = 0; i < data.docs.length; i++) {
          this.add(data.docs[i]);
          documents[data.docs[i].location] = data.docs[i];
        }
      });
      min_search_length = ((data.config && data.config.min_search_length) || 3) - 1;
      searchWorker = {postMessage: function (msg) {
        if (!msg.query) { return; }
        displayResults(index.search(msg.query).map(function (r) {
          var doc = documents[r.ref];
          doc.summary = doc.text.substring(0, 200);
          return doc;
        }));
      }};
      initSearch();
    }
    function load (i) {
      if (i === scripts.length) { ready(); return; }
      var s = document.createElement('script');
      s.src = joinUrl(base_url, scripts[i]);
      s.onload = function () { load(i + 1); };
      document.head.appendChild(s);
    }
    load(0);
  })();
} else """


def on_post_build(config: dict, **kwargs: object) -> None:
    search = Path(config["site_dir"]) / "search"
    if not (search / "search_index.json").is_file():
        return  # the search plugin is off
    data = json.loads((search / "search_index.json").read_text(encoding="utf-8"))
    (search / "search_index.js").write_text("var linlensSearchData = " + json.dumps(data) + ";\n", encoding="utf-8")
    main = search / "main.js"
    text = main.read_text(encoding="utf-8")
    if text.count(_ORIGINAL) != 1:
        raise ValueError(f"{main}: mkdocs's search script changed; update docs/_hooks/search_file.py")
    main.write_text(text.replace(_ORIGINAL, _FILE_BRANCH + _ORIGINAL, 1), encoding="utf-8")
