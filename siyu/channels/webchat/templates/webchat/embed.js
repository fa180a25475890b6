/* siyu web chat embed: <script src="{{ origin }}/chat/embed.js" data-token="BRAND_TOKEN"></script>
   adds a floating 在线客服 button that opens the chat in an iframe. window.SiyuChat.open()
   / .close() / .setToken(token) control it from the page. */
(function () {
  "use strict";
  if (window.SiyuChat) { return; }
  var origin = {{ origin | tojson }};
  var script = document.currentScript;
  var token = script && script.dataset.token ? script.dataset.token : "";
  var frame = null;
  var button = document.createElement("button");
  button.type = "button";
  button.textContent = "在线客服";
  button.setAttribute("aria-label", "打开在线客服");
  button.style.cssText = "position:fixed;right:20px;bottom:20px;z-index:2147483646;" +
    "width:64px;height:64px;border-radius:50%;border:0;background:#1f7a4d;color:#fff;" +
    "font:600 13px/1.2 sans-serif;box-shadow:0 4px 14px rgba(0,0,0,.25);cursor:pointer;";
  function src() { return origin + "/chat" + (token ? "?token=" + encodeURIComponent(token) : ""); }
  function open() {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.title = "在线客服";
      frame.src = src();
      frame.style.cssText = "position:fixed;right:20px;bottom:96px;z-index:2147483647;" +
        "width:min(380px,calc(100vw - 40px));height:min(600px,calc(100vh - 120px));" +
        "border:0;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);background:#fff;";
      document.body.appendChild(frame);
    }
    frame.style.display = "block";
    button.textContent = "收起";
  }
  function close() {
    if (frame) { frame.style.display = "none"; }
    button.textContent = "在线客服";
  }
  button.addEventListener("click", function () {
    if (frame && frame.style.display !== "none") { close(); } else { open(); }
  });
  function mount() { document.body.appendChild(button); }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
  window.SiyuChat = {
    open: open, close: close,
    setToken: function (value) { token = value || ""; if (frame) { frame.src = src(); } }
  };
})();
