/* siyu web chat page: identify, send, and show replies streamed by Server-Sent Events. */
(function () {
  "use strict";
  var KEY = "siyu_chat_session";
  var SENDERS = {bot: "智能助手", agent: "客服", system: "系统消息", customer: "我"};
  var app = document.getElementById("app");
  var list = document.getElementById("messages");
  var shown = {};
  var source = null;

  function $(id) { return document.getElementById(id); }
  function session() { return sessionStorage.getItem(KEY); }
  function clientId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function api(path, body, method) {
    var headers = {"Content-Type": "application/json"};
    if (session()) { headers["X-Siyu-Chat"] = session(); }
    return fetch(path, {
      method: method || (body === undefined ? "GET" : "POST"),
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.status === 401 && path.indexOf("/chat/api/messages") === 0) {
          sessionStorage.removeItem(KEY);
          showLogin("会话已过期，请重新验证");
        }
        if (!r.ok) {
          var err = new Error(friendly(r.status, data));
          err.status = r.status; err.data = data; throw err;
        }
        return data;
      });
    });
  }

  // The API explains errors in English for integrators; the visitor reads Chinese.
  var FIELD_ERRORS = {phone: "请输入正确的手机号", code: "请输入短信中的 6 位验证码",
                      text: "消息不能为空，且不超过 2000 字", token: "身份信息无效或已过期"};
  function friendly(status, data) {
    var details = data.details;
    var field = Array.isArray(details) ? (details[0] || {}).field : (details || {}).field;
    if (status === 401 && data.message && /[\u4e00-\u9fa5]/.test(data.message)) { return data.message; }
    if (status === 429) { return data.message && /[\u4e00-\u9fa5]/.test(data.message) ? data.message : "操作过于频繁，请稍后再试"; }
    if (status === 502 || status === 503) { return "服务暂时不可用，请稍后再试"; }
    if (field && FIELD_ERRORS[field.split(".")[0]]) { return FIELD_ERRORS[field.split(".")[0]]; }
    return "请求失败（" + status + "），请稍后再试";
  }

  function render(m) {
    if (m.id && shown[m.id]) { return shown[m.id]; }
    var sender = m.direction === "in" ? "customer" : (m.sender || "bot");
    var row = document.createElement("div");
    row.className = "msg msg-" + sender;
    if (m.id) { row.dataset.id = m.id; }
    if (sender !== "customer" && sender !== "system") {
      var who = document.createElement("div");
      who.className = "who"; who.textContent = SENDERS[sender] || sender;
      row.appendChild(who);
    }
    var bubble = document.createElement("div");
    bubble.className = "bubble"; linkify(bubble, m.text || "");
    row.appendChild(bubble);
    if (m.csat) { row.appendChild(csatButtons()); }
    list.appendChild(row);
    list.scrollTop = list.scrollHeight;
    if (m.id) { shown[m.id] = row; }
    return row;
  }

  // Web addresses in a reply (an appointment's calendar link) become links; the rest stays
  // text (never HTML from a message).
  var LINK = /(https?:\/\/[^\s]+|\/appointments\/\d+\.ics\?sig=[0-9a-f]+)/g;
  function linkify(el, text) {
    var at = 0, m;
    LINK.lastIndex = 0;
    while ((m = LINK.exec(text)) !== null) {
      el.appendChild(document.createTextNode(text.slice(at, m.index)));
      var a = document.createElement("a");
      a.href = m[0]; a.textContent = m[0]; a.className = "link";
      a.target = "_blank"; a.rel = "noopener";
      if (m[0].indexOf(".ics?") > 0) {
        a.setAttribute("download", ""); a.textContent = "下载日历文件"; a.className = "link ics";
      }
      el.appendChild(a);
      at = m.index + m[0].length;
    }
    el.appendChild(document.createTextNode(text.slice(at)));
  }

  function csatButtons() {
    var box = document.createElement("div");
    var buttons = document.createElement("div");
    buttons.className = "csat";
    for (var n = 1; n <= 5; n++) {
      var b = document.createElement("button");
      b.type = "button"; b.textContent = String(n); b.dataset.score = String(n);
      b.setAttribute("aria-label", n + " 分");
      b.addEventListener("click", function (ev) {
        var chosen = ev.currentTarget;
        buttons.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
        chosen.classList.add("chosen");
        send(chosen.dataset.score);
      });
      buttons.appendChild(b);
    }
    var labels = document.createElement("div");
    labels.className = "csat-labels";
    labels.innerHTML = "<span>很不满意</span><span>非常满意</span>";
    box.appendChild(buttons); box.appendChild(labels);
    return box;
  }

  function send(text) {
    text = (text || "").trim();
    if (!text) { return; }
    var row = render({direction: "in", text: text});
    row.classList.add("pending");
    api("/chat/api/messages", {text: text, client_id: clientId()}).then(function (res) {
      row.classList.remove("pending");
      row.dataset.id = res.message_id; shown[res.message_id] = row;
    }).catch(function (err) {
      row.classList.remove("pending"); row.classList.add("failed");
      render({direction: "out", sender: "system", text: "发送失败：" + err.message});
    });
  }

  function stream(cursor) {
    if (source) { source.close(); }
    source = new EventSource("/chat/stream?session=" + encodeURIComponent(session()) +
                             "&after=" + cursor);
    source.addEventListener("message", function (ev) { render(JSON.parse(ev.data)); });
    source.addEventListener("end", function () { /* the browser reconnects by itself */ });
  }

  function openChat() {
    $("login").hidden = true;
    list.hidden = false; $("composer").hidden = false;
    api("/chat/api/messages").then(function (res) {
      if (res.customer && res.customer.name) { $("who").textContent = "您好，" + res.customer.name; }
      res.messages.forEach(render);
      if (!res.messages.length) {
        render({direction: "out", sender: "system", text: "您好，请直接描述您的问题，我们马上为您处理。"});
      }
      stream(res.cursor);
      $("text").focus();
    }).catch(function () { /* 401 handled in api() */ });
  }

  function showLogin(message) {
    if (source) { source.close(); source = null; }
    list.hidden = true; $("composer").hidden = true; $("login").hidden = false;
    var phone = app.dataset.phoneLogin === "1", demo = app.dataset.demo === "1";
    $("phone-form").hidden = !phone;
    $("demo-link").hidden = !demo;
    $("no-login").hidden = phone || demo;
    $("login-hint").hidden = !phone;
    $("login-error").textContent = message || "";
  }

  function loggedIn(res) {
    sessionStorage.setItem(KEY, res.session);
    openChat();
  }

  $("composer").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var box = $("text"); var text = box.value; box.value = ""; send(text);
  });
  $("text").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault(); $("composer").requestSubmit();
    }
  });
  $("send-code").addEventListener("click", function () {
    var btn = $("send-code");
    btn.disabled = true;
    api("/chat/api/code", {phone: $("phone").value}).then(function (res) {
      $("login-error").textContent = "";
      var left = res.resend_in;
      btn.textContent = left + " 秒后重发";
      var timer = setInterval(function () {
        left -= 1;
        if (left <= 0) { clearInterval(timer); btn.disabled = false; btn.textContent = "获取验证码"; }
        else { btn.textContent = left + " 秒后重发"; }
      }, 1000);
      $("code").focus();
    }).catch(function (err) { btn.disabled = false; $("login-error").textContent = err.message; });
  });
  $("phone-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = {phone: $("phone").value, code: $("code").value};
    // Opened from a friend's invite link (/r/<code> -> /chat?invite=CODE).
    var invite = new URLSearchParams(location.search).get("invite");
    if (invite) { body.invite = invite; }
    api("/chat/api/verify", body)
      .then(loggedIn)
      .catch(function (err) { $("login-error").textContent = err.message; });
  });

  var params = new URLSearchParams(location.search);
  var token = params.get("token");
  if (token) {
    history.replaceState(null, "", location.pathname);
    api("/chat/api/session", {token: token}).then(loggedIn).catch(function (err) {
      showLogin("身份校验失败：" + err.message);
    });
  } else if (session()) {
    openChat();
  } else {
    showLogin();
  }
})();
