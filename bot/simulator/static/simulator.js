// The simulator's script: submit its forms without leaving the page, and refresh the panels the server
// renders (GET .../panels answers {panel name: HTML}). Every form also works without this script.
(function () {
  "use strict";
  const root = document.querySelector("[data-simulator]");
  if (!root) {
    return;
  }
  const panelsUrl = root.dataset.panels;
  const notice = root.querySelector("[data-role=notice]");
  const shown = {};
  let busy = false;
  let again = false;
  let eagerUntil = 0;  // after an action, replies come within a few seconds: look more often until then

  function say(text, failed) {
    notice.textContent = text || "";
    notice.classList.toggle("notice--error", Boolean(failed));
  }

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const answer = await fetch(panelsUrl, { headers: { Accept: "application/json" } });
      if (!answer.ok) {
        say("the simulator could not refresh: " + answer.status, true);
        return;
      }
      const panels = await answer.json();
      for (const [name, html] of Object.entries(panels)) {
        const panel = root.querySelector('[data-panel="' + name + '"]');
        if (!panel || shown[name] === html) {
          continue;
        }
        const atBottom = panel.scrollHeight - panel.scrollTop - panel.clientHeight < 40;
        const first = shown[name] === undefined;
        panel.innerHTML = html;
        shown[name] = html;
        if (panel.classList.contains("screen") && (atBottom || first)) {
          panel.scrollTop = panel.scrollHeight;
        }
      }
    } catch (error) {
      say("the simulator could not refresh: " + error, true);
    } finally {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  root.addEventListener("submit", async function (event) {
    const form = event.target.closest("form[data-async]");
    if (!form) {
      return;
    }
    event.preventDefault();
    const body = new FormData(form, event.submitter);
    for (const button of form.querySelectorAll("button")) {
      button.disabled = true;
    }
    try {
      const answer = await fetch(form.action, { method: "POST", body: body, headers: { Accept: "application/json" } });
      const reply = await answer.json().catch(function () { return { notice: answer.statusText }; });
      say(reply.notice, !answer.ok);
      if (answer.ok && form.dataset.role === "composer") {
        form.reset();
      }
    } catch (error) {
      say("not sent: " + error, true);
    } finally {
      for (const button of form.querySelectorAll("button")) {
        button.disabled = false;
      }
    }
    eagerUntil = Date.now() + 5000;
    refresh();
  });

  for (const screen of root.querySelectorAll(".screen")) {
    screen.scrollTop = screen.scrollHeight;
  }
  let last = 0;
  refresh();
  window.setInterval(function () {
    const now = Date.now();
    if (now < eagerUntil || now - last >= 1000) {
      last = now;
      refresh();
    }
  }, 250);
})();
